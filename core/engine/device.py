"""Device and dtype policy: which accelerator, and which precision to try on it.

Availability is passed in as a `DeviceProbe` so that the CUDA and MPS branches
are testable on a machine that has neither.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.errors import SettingsError


@dataclass(frozen=True)
class DeviceProbe:
    cuda_available: Callable[[], bool]
    mps_available: Callable[[], bool]
    cuda_bf16_supported: Callable[[], bool]


def system_probe() -> DeviceProbe:
    def bf16() -> bool:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()

    return DeviceProbe(torch.cuda.is_available, _mps_backend_available, bf16)


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
    return [torch.float32]


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
