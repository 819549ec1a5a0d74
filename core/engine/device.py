"""Device and dtype policy: which accelerator, and which precision to try on it.

Availability is passed in as a `DeviceProbe` so that the CUDA, MPS and CPU-bf16
branches are testable on a machine that has none of them.

On the CPU, ``--dtype auto`` runs the model in bf16 -- the released checkpoints'
own precision -- where the CPU computes bf16 natively (AVX512-BF16 or AMX on
x86, the BF16 extension on Arm) *and* a short measured probe (one decode-step
sized matmul in bf16 against fp32, :func:`measure_cpu_bf16`) shows it faster.
The probe's result is cached per machine (``<data_dir>/cache/cpu-dtype.json``,
keyed by CPU model, flags and torch version). Everywhere else
auto is fp32; ``--dtype float32`` always is.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from core.errors import SettingsError

log = logging.getLogger(__name__)

# bf16 is chosen when its probe matmul takes at most this share of fp32's time:
# a CPU that only emulates bf16 (or converts on every call) measures ~1x or worse.
BF16_MAX_RATIO = 0.8
# The probe: a talker decode step's MLP projection at 0.6B (one row, 1024 -> 3072),
# weights larger than the caches, as in generation (memory-bound GEMV).
PROBE_SHAPE = (1024, 3072)
PROBE_REPEATS = 40
CPU_DTYPE_CACHE = "cpu-dtype.json"


@dataclass(frozen=True)
class CpuBf16:
    """Whether this CPU computes bf16 natively, and how fast the probe found it."""

    native: str | None  # "AVX512-BF16", "AMX", "Arm BF16"; None: emulated only
    ratio: float | None = None  # bf16 / fp32 seconds of the probe; None: not measured

    @property
    def use(self) -> bool:
        return self.native is not None and self.ratio is not None and self.ratio <= BF16_MAX_RATIO

    def reason(self) -> str:
        """Why auto chose what it chose, for the Models tab, doctor and every take's details."""
        if self.native is None:
            return "auto: CPU has no native bf16 (AVX512-BF16, AMX or Arm BF16)"
        if self.ratio is None:
            return f"auto: CPU has {self.native}, bf16 probe not run"
        verdict = "" if self.use else f" (not under {BF16_MAX_RATIO}x)"
        return f"auto: CPU has {self.native}, probe {self.ratio:.2f}x fp32{verdict}"


def _no_cpu_bf16() -> CpuBf16:
    return CpuBf16(None)


@dataclass(frozen=True)
class DeviceProbe:
    cuda_available: Callable[[], bool]
    mps_available: Callable[[], bool]
    cuda_bf16_supported: Callable[[], bool]
    # The CPU's bf16 verdict (measured once, cached); fakes default to "none" (fp32).
    cpu_bf16: Callable[[], CpuBf16] = field(default=_no_cpu_bf16)


def system_probe(cache_dir: Path | None = None) -> DeviceProbe:
    """The real machine; ``cache_dir`` keeps the CPU bf16 probe's result between runs."""

    def bf16() -> bool:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()

    verdict: list[CpuBf16] = []

    def cpu_bf16() -> CpuBf16:
        if not verdict:
            verdict.append(cached_cpu_bf16(cache_dir))
        return verdict[0]

    return DeviceProbe(torch.cuda.is_available, _mps_backend_available, bf16, cpu_bf16)


# --- the CPU's bf16 --------------------------------------------------------------


def cpu_bf16_feature() -> str | None:
    """The CPU's native bf16 instructions, by name, or None (read from the OS, no torch internals)."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        if platform.system() == "Darwin":
            import subprocess

            try:
                out = subprocess.run(
                    ["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                return None
            return "Arm BF16" if out == "1" else None
        return "Arm BF16" if "bf16" in _cpuinfo_flags() else None
    flags = _cpuinfo_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    return None


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "CPU part"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_cpu_bf16(repeats: int = PROBE_REPEATS) -> float:
    """bf16 / fp32 wall time of the probe matmul on one thread (best of three rounds each, interleaved).

    One thread measures what the core computes; with every core busy the
    two-thread figure swings with the machine's load at probe time (on a
    loaded 2-core machine bf16 went from 0.57x to 17x fp32 between one and two
    threads), and a cached verdict must not depend on a passing load.
    """
    rows, cols = PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    weight32 = torch.randn(cols, rows, generator=generator) / rows**0.5
    x32 = torch.randn(1, rows, generator=generator)
    weight16, x16 = weight32.to(torch.bfloat16), x32.to(torch.bfloat16)

    def timed(x: torch.Tensor, w: torch.Tensor) -> float:
        torch.nn.functional.linear(x, w)  # warm-up (kernel selection, packing caches)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.linear(x, w)
        return time.perf_counter() - start

    best32, best16 = float("inf"), float("inf")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for _ in range(3):
                best32 = min(best32, timed(x32, weight32))
                best16 = min(best16, timed(x16, weight16))
    finally:
        torch.set_num_threads(threads)
    return best16 / max(best32, 1e-12)


def cached_cpu_bf16(cache_dir: Path | None) -> CpuBf16:
    """The CPU's bf16 verdict: from the cache when this machine was probed before, else measured."""
    native = cpu_bf16_feature()
    if native is None:
        return CpuBf16(None)
    key = f"{_cpu_name()}|{native}|torch {torch.__version__}"
    path = Path(cache_dir) / CPU_DTYPE_CACHE if cache_dir else None
    if path is not None:
        try:
            data = json.loads(path.read_text())
            if data.get("key") == key and isinstance(data.get("ratio"), (int, float)):
                return CpuBf16(native, float(data["ratio"]))
        except (OSError, ValueError, AttributeError):
            pass  # no cache yet, or unreadable: measure again
    started = time.perf_counter()
    try:
        ratio = measure_cpu_bf16()
    except RuntimeError as exc:  # a torch build without CPU bf16 kernels
        log.warning("the CPU bf16 probe failed, auto stays float32: %s", exc)
        return CpuBf16(native, None)
    verdict = CpuBf16(native, round(ratio, 3))
    log.info("event=cpu_bf16_probe native=%s ratio=%.3f seconds=%.2f", native, ratio, time.perf_counter() - started)
    if path is not None:
        try:
            from core.storage.durable import write_atomic

            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps({"key": key, **asdict(verdict)}, indent=2).encode())
        except OSError as exc:  # a read-only data folder: probe again next time
            log.warning("could not cache the CPU bf16 probe in %s: %s", path, exc)
    return verdict


def resolve_device(preference: str, probe: DeviceProbe) -> str:
    """auto picks CUDA, then Apple MPS, then CPU; an explicit choice must exist."""
    if preference == "auto":
        if probe.cuda_available():
            return "cuda"
        if probe.mps_available():
            return "mps"
        return "cpu"
    if preference == "cuda" and not probe.cuda_available():
        raise SettingsError(
            "Setting 'device' is cuda, but no CUDA GPU is available to PyTorch. Use --device auto or --device cpu."
        )
    if preference == "mps" and not probe.mps_available():
        raise SettingsError(
            "Setting 'device' is mps, but Apple MPS is not available (it needs an Apple "
            "Silicon Mac and a PyTorch build with MPS). Use --device auto or --device cpu."
        )
    return preference


_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def dtype_candidates(device: str, preference: str, probe: DeviceProbe) -> list[torch.dtype]:
    """Precisions to try in order; the manager falls back along the list.

    MPS support for half precision varies by macOS and PyTorch version, which is
    the most common crash report of Apple users, so auto tries bf16, then fp16,
    and ends on fp32, which always works.
    """
    if preference != "auto":
        if device == "cpu" and preference == "float16":
            raise SettingsError("Setting 'dtype' float16 is not supported on the CPU. Use auto, float32 or bfloat16.")
        return [_DTYPES[preference]]
    if device == "cuda":
        return [torch.bfloat16 if probe.cuda_bf16_supported() else torch.float16]
    if device == "mps":
        return [torch.bfloat16, torch.float16, torch.float32]
    return [torch.bfloat16 if probe.cpu_bf16().use else torch.float32]


def dtype_reason(device: str, preference: str, probe: DeviceProbe) -> str:
    """Why the precision is what it is, in a few words ("auto: CPU has AVX512-BF16, probe 0.42x fp32")."""
    if preference != "auto":
        return f"--dtype {preference}"
    if device == "cuda":
        return "auto: GPU " + ("supports bf16" if probe.cuda_bf16_supported() else "has no bf16, fp16")
    if device == "mps":
        return "auto: Apple GPU, first that works"
    return probe.cpu_bf16().reason()


def describe_dtype(device: str, preference: str, probe: DeviceProbe) -> str:
    """The precision and why, as the Models tab, doctor and a take's details say it.

    e.g. "bfloat16 (auto: CPU has AVX512-BF16, probe 0.58x fp32)".
    """
    names = " -> ".join(dtype_name(d) for d in dtype_candidates(device, preference, probe))
    return f"{names} ({dtype_reason(device, preference, probe)})"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def prepare_environment(device: str) -> None:
    """Process-wide switches that must be set before kernels run."""
    if device == "mps":
        # Some ops used by the speech tokenizer have no MPS kernel yet; without
        # this flag PyTorch raises instead of running them on the CPU.
        os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")


def release_memory(device: str) -> None:
    """Returns freed memory to the system after references were dropped."""
    gc.collect()
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and _mps_backend_available():
        torch.mps.empty_cache()


def _mps_backend_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def seed_everything(seed: int) -> None:
    # torch.manual_seed also seeds CUDA and MPS generators in current PyTorch.
    torch.manual_seed(seed)
