"""`qwen-tts-studio doctor`: checks that the machine can run the studio.

Each check returns one `Check` (pass / warn / fail, a one-line detail and, when
something is wrong, a one-line fix). Everything that touches the machine is a
parameter of `run_checks`, so each pass and failure path is testable without
breaking the machine. A check that itself crashes becomes a failed check with
the exception's first line; `run_checks` never raises.

Nothing heavy is imported at module import: PyTorch, torchaudio and qwen-tts
are imported in child processes (a mismatched torch/torchaudio pair raises
OSError at import, and qwen-tts takes seconds and prints a banner), so the
doctor still runs when exactly those are broken.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.settings import Settings

if TYPE_CHECKING:  # core.engine.device imports torch; the doctor must run without a working torch
    from core.engine.catalog import Checkpoint
    from core.engine.device import DeviceProbe

log = logging.getLogger(__name__)

Status = Literal["pass", "warn", "fail"]

# The known-good pair, as locked in requirements/*.lock (tests/core check that
# they agree). Used for the fix line only where the lock file is not at hand.
TORCH_VERSION = "2.14.1"
TORCHAUDIO_VERSION = "2.11.1"
QWEN_TTS_VERSION = "0.1.1"
MIN_PYTHON = (3, 10)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STUDIO_LOCK = PROJECT_ROOT / "requirements" / "studio.lock"


def repair_command(python: str | None = None, lock: Path | None = None) -> str:
    """The one command that puts this install back on the exact, tested set.

    From a source checkout that is a re-sync from the lock file (what the
    README's install does); from an installed wheel it pins the known-good pair.
    """
    python = shlex.quote(python or sys.executable)
    lock = STUDIO_LOCK if lock is None else lock
    if lock.is_file():
        root = shlex.quote(str(lock.parent.parent))
        return f"{python} -m pip install -r {shlex.quote(str(lock))} -e {root}"
    return (
        f"{python} -m pip install 'torch=={TORCH_VERSION}' 'torchaudio=={TORCHAUDIO_VERSION}' "
        f"'qwen-tts=={QWEN_TTS_VERSION}'"
    )


FFMPEG_FIX = "MP3 export needs ffmpeg: brew install ffmpeg / apt install ffmpeg"

GB = 1_000_000_000
DISK_WARN_BYTES = 10 * GB  # every real checkpoint together is about 13 GB
DISK_FAIL_BYTES = 1 * GB

TORCH_TIMEOUT_S = 45.0
QWEN_TTS_TIMEOUT_S = 60.0  # a cold import is ~10 s on a slow disk; a hang is reported, not waited out

_MARKER = "@@qwen-tts-studio-doctor@@"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """`Type: first line of the message`, short enough for one output line."""
    text = str(exc).strip()
    line = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


# --- probes of the real machine (the defaults of run_checks) -----------------

_TORCH_SCRIPT = f"""
import json, sys
from importlib import metadata
out = {{}}
# Loading, not comparing version strings: torchaudio's compiled library is what
# fails with a torch it was not built against (undefined symbol at dlopen).
loaders = {{
    "torch": "import torch; torch.zeros(1).add_(1)",
    "torchaudio": "import torchaudio, torchaudio._extension, torch; "
                  "import torchaudio.compliance.kaldi as k; k.fbank(torch.zeros(1, 400) + 0.1, num_mel_bins=23)",
}}
for name in ("torch", "torchaudio"):
    entry = {{"version": None, "error": None}}
    try:
        exec(loaders[name], {{}})
        module = sys.modules[name]
        entry["version"] = str(getattr(module, "__version__", "") or metadata.version(name))
    except BaseException as exc:
        text = str(exc).strip()
        entry["error"] = type(exc).__name__ + (": " + text.splitlines()[0] if text else "")
        try:
            entry["version"] = metadata.version(name)
        except Exception:
            pass
    out[name] = entry
sys.stdout.write("\\n{_MARKER}" + json.dumps(out) + "\\n")
"""

_QWEN_TTS_SCRIPT = f"""
import json, sys
from importlib import metadata
out = {{"version": None, "error": None}}
try:
    out["version"] = metadata.version("qwen-tts")
except Exception:
    pass
try:
    import qwen_tts
except BaseException as exc:
    text = str(exc).strip()
    out["error"] = type(exc).__name__ + (": " + text.splitlines()[0] if text else "")
sys.stdout.write("\\n{_MARKER}" + json.dumps(out) + "\\n")
"""


def _run_python(script: str, timeout: float) -> dict[str, Any]:
    """Runs `script` in a fresh interpreter of this environment; returns its JSON report.

    On a timeout or a crash of the child (no report) the result is
    ``{"probe_error": "..."}`` and, for a timeout, ``"timeout": True``.
    """
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")  # importing must never reach the network
    env.setdefault("PYTHONIOENCODING", "utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"probe_error": f"the import did not finish within {timeout:.0f} s", "timeout": True}
    stdout = done.stdout.decode("utf-8", "replace")
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARKER):
            return json.loads(line[len(_MARKER) :])
    stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
    last = stderr[-1].strip() if stderr else ""
    return {"probe_error": f"python exited with code {done.returncode}" + (f": {last[:160]}" if last else "")}


def probe_torch_pair() -> dict[str, Any]:
    """``{"torch": {"version", "error"}, "torchaudio": {...}}`` from a child process."""
    return _run_python(_TORCH_SCRIPT, TORCH_TIMEOUT_S)


def probe_qwen_tts() -> dict[str, Any]:
    """``{"version", "error"}`` for ``import qwen_tts`` in a child process."""
    return _run_python(_QWEN_TTS_SCRIPT, QWEN_TTS_TIMEOUT_S)


def describe_cuda() -> str:
    """Name and memory of the CUDA GPU PyTorch will use."""
    try:
        import torch

        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        more = torch.cuda.device_count() - 1
        return f"{props.name}, {_gb(props.total_memory)}" + (f" (+{more} more)" if more > 0 else "")
    except Exception as exc:  # the check itself still passes: CUDA is available
        return f"CUDA GPU (details unavailable: {first_line(exc, 80)})"


def port_bind_error(host: str, port: int) -> OSError | None:
    """The error binding `host:port` would raise now, or None when the port is free.

    Mirrors how the studio starts: Gradio first binds 127.0.0.1:port with
    SO_REUSEADDR, then uvicorn binds host:port, so both must be free.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    for name in dict.fromkeys(["127.0.0.1", bare]):
        try:
            family, kind, proto, _, address = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)[0]
        except socket.gaierror as exc:
            return exc
        sock = socket.socket(family, kind, proto)
        try:
            if os.name != "nt":  # on Windows SO_REUSEADDR would allow taking a busy port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            return exc
        finally:
            sock.close()
    return None


def _hf_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


# --- the checks ----------------------------------------------------------------


def check_python(version: tuple[int, ...]) -> Check:
    text = ".".join(str(part) for part in version[:3])
    if tuple(version[:2]) >= MIN_PYTHON:
        return Check("python", "pass", text)
    return Check(
        "python",
        "fail",
        f"{text} is too old; the studio needs Python 3.10 or newer",
        "create the venv with a newer Python, e.g. python3.11 -m venv .venv && .venv/bin/pip install -e .",
    )


def _probe_failed(report: dict[str, Any], name: str, what: str, statement: str) -> Check | None:
    """The check when the import probe itself did not report (a timeout only warns), else None."""
    if "probe_error" not in report:
        return None
    status: Status = "warn" if report.get("timeout") else "fail"
    return Check(
        name,
        status,
        f"could not check {what}: {report['probe_error']}",
        f"run python -c '{statement}' to see what happens",
    )


def check_torch(report: dict[str, Any]) -> Check:
    failed = _probe_failed(report, "torch", "torch/torchaudio", "import torch, torchaudio._extension")
    if failed is not None:
        return failed
    torch, audio = report.get("torch") or {}, report.get("torchaudio") or {}
    tv, av = torch.get("version"), audio.get("version")
    if torch.get("error"):
        installed = f"torch {tv} is installed but " if tv else ""
        return Check("torch", "fail", f"{installed}torch does not load: {torch['error']}", repair_command())
    if audio.get("error"):
        if av is None:
            return Check("torch", "fail", f"torch {tv}, torchaudio is not installed", repair_command())
        return Check(
            "torch",
            "fail",
            f"torch {tv} is fine but torchaudio {av} does not load with it: {audio['error']}",
            repair_command(),
        )
    return Check("torch", "pass", f"torch {tv}, torchaudio {av} (both load)")


def check_qwen_tts(report: dict[str, Any]) -> Check:
    failed = _probe_failed(report, "qwen-tts", "qwen-tts", "import qwen_tts")
    if failed is not None:
        return failed
    version, error = report.get("version"), report.get("error")
    if error:
        installed = f"qwen-tts {version} is installed but " if version else ""
        return Check("qwen-tts", "fail", f"{installed}does not import: {error}", repair_command())
    if version != QWEN_TTS_VERSION:
        return Check(
            "qwen-tts",
            "warn",
            f"{version or 'unknown version'} imports, but the studio is built and tested against {QWEN_TTS_VERSION}",
            repair_command(),
        )
    return Check("qwen-tts", "pass", f"{version}")


def check_device(preference: str, probe: DeviceProbe, describe: Callable[[], str], dtype: str | None = None) -> Check:
    """The device (and, with ``dtype``, the precision auto or the setting picks on it and why)."""
    check = _check_device(preference, probe, describe)
    if dtype is None or check.status == "fail":
        return check
    from core.engine.device import describe_dtype, resolve_device
    from core.errors import SettingsError

    try:
        precision = describe_dtype(resolve_device(preference, probe), dtype, probe)
    except SettingsError as exc:
        return Check("device", "fail", f"{check.detail}; {exc}", "pass --dtype auto")
    return Check(check.name, check.status, f"{check.detail}; dtype {precision}", check.fix)


def _check_device(preference: str, probe: DeviceProbe, describe: Callable[[], str]) -> Check:
    cuda, mps = bool(probe.cuda_available()), bool(probe.mps_available())
    found = f"cuda: {describe()}" if cuda else "mps (Apple Silicon GPU)" if mps else "cpu only"
    if preference in ("cuda", "mps") and not (cuda if preference == "cuda" else mps):
        missing = "no CUDA GPU is available to PyTorch" if preference == "cuda" else "Apple MPS is not available"
        return Check(
            "device",
            "fail",
            f"setting 'device' is {preference}, but {missing} (found: {found})",
            "pass --device auto (or --device cpu)",
        )
    if preference == "cpu":
        unused = f" (as set; {found} is available but unused)" if cuda or mps else ""
        return Check("device", "pass", f"cpu{unused}")
    if not (cuda or mps):
        return Check("device", "pass", "cpu only (no CUDA GPU or Apple MPS found; generation will be slow)")
    return Check("device", "pass", found)


def check_ffmpeg(which: Callable[[str], str | None]) -> Check:
    path = which("ffmpeg")
    if path:
        return Check("ffmpeg", "pass", str(path))
    return Check("ffmpeg", "warn", "not found on PATH", FFMPEG_FIX)


def check_data_dir(path: Path) -> Check:
    fix = f"pass --data-dir with a folder you can write to, or fix the permissions of {path}"
    probe_file = path / f".doctor-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe_file, "wb") as handle:
            handle.write(b"qwen-tts-studio doctor\n")
            handle.flush()
            os.fsync(handle.fileno())
        probe_file.unlink()
    except OSError as exc:
        reason = exc.strerror or first_line(exc)
        return Check("data-dir", "fail", f"cannot write to {path}: {reason}", fix)
    return Check("data-dir", "pass", f"{path} is writable")


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_disk(locations: list[tuple[str, Path]], disk_usage: Callable[[Path], Any]) -> Check:
    """Free space where takes and checkpoints go; the least free decides the status."""
    groups: dict[Any, tuple[Path, list[str], int]] = {}  # one entry per file system
    for label, path in locations:
        where = _existing_ancestor(path)
        free = int(disk_usage(where).free)
        try:
            key: Any = os.stat(where).st_dev
        except OSError:
            key = where
        shown, labels, _ = groups.get(key, (path, [], free))
        groups[key] = (shown, labels + [label], free)
    parts = [f"{_gb(free)} free in {shown} ({', '.join(labels)})" for shown, labels, free in groups.values()]
    least = min((free for _, _, free in groups.values()), default=None)
    detail = "; ".join(parts)
    if least is not None and least < DISK_FAIL_BYTES:
        return Check(
            "disk",
            "fail",
            detail,
            "free some space (under 1 GB left), or point --data-dir / --hf-cache-dir at a bigger disk",
        )
    if least is not None and least < DISK_WARN_BYTES:
        return Check(
            "disk",
            "warn",
            detail,
            "all models need 10–14 GB: free some space or point --hf-cache-dir / --models-dir at a bigger disk",
        )
    return Check("disk", "pass", detail)


def check_models(demo: bool, present: list[str], total: int) -> Check:
    if present:
        which = f"all {total}" if len(present) == total else f"{len(present)} of {total}"
        return Check("models", "pass", f"{which} present: {', '.join(present)}")
    if demo:
        return Check(
            "models",
            "warn",
            f"none of the {total} demo models is built yet",
            "they are built when the studio starts (seconds), or now with "
            "`qwen-tts-studio models build-demo` (same --data-dir)",
        )
    return Check(
        "models",
        "warn",
        f"none of the {total} checkpoints is downloaded",
        "run `qwen-tts-studio models download 0.6B-Base` (1.2 GB), or try the studio with --demo-models",
    )


def check_serving(settings: Settings) -> Check:
    """The serving-safety rules the studio applies at start (password off loopback, TLS pair)."""
    from core.errors import SettingsError
    from core.serving.access import check_serving as validate
    from core.serving.access import is_loopback

    try:
        users = validate(settings)
    except SettingsError as exc:  # the message already says what to do
        return Check("serving", "fail", str(exc), None)
    where = "this machine only" if is_loopback(settings.host) else "the network"
    access = f"password for {len(users)} user(s)" if users else "no password"
    tls = "https" if settings.ssl_certfile else "http"
    return Check("serving", "pass", f"{tls} on {settings.host} ({where}), {access}")


def check_port(host: str, port: int, error: OSError | None) -> Check:
    if error is None:
        return Check("port", "pass", f"{host}:{port} is free")
    other = port + 1 if port < 65535 else port - 1
    if isinstance(error, socket.gaierror):
        return Check(
            "port",
            "fail",
            f"host {host!r} does not resolve: {first_line(error)}",
            "pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (the LAN)",
        )
    if error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
        return Check("port", "fail", f"port {port} is in use", f"pass --port {other} or stop the other process")
    if error.errno == errno.EADDRNOTAVAIL:
        return Check(
            "port",
            "fail",
            f"cannot listen on {host}: it is not an address of this machine",
            "pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (the LAN)",
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return Check(
            "port", "fail", f"no permission to listen on port {port}", "pass a port above 1023, e.g. --port 7860"
        )
    return Check(
        "port",
        "fail",
        f"cannot listen on {host}:{port}: {error.strerror or first_line(error)}",
        f"pass --port {other} or check --host",
    )


# --- running them ----------------------------------------------------------


def _guarded(name: str, run: Callable[[], Check]) -> Check:
    try:
        return run()
    except Exception as exc:
        log.debug("doctor check %s crashed", name, exc_info=True)
        return Check(
            name,
            "fail",
            f"the check itself crashed: {first_line(exc)}",
            "run with --log-level debug and include the output in a bug report",
        )


def run_checks(
    settings: Settings,
    *,
    probe: DeviceProbe | None = None,
    which: Callable[[str], str | None] | None = None,
    bind_error: Callable[[str, int], OSError | None] | None = None,
    disk_usage: Callable[[Path], Any] | None = None,
    python_version: tuple[int, ...] | None = None,
    torch_probe: Callable[[], dict[str, Any]] | None = None,
    qwen_probe: Callable[[], dict[str, Any]] | None = None,
    cuda_describe: Callable[[], str] | None = None,
    local_path: Callable[[Checkpoint], Path | None] | None = None,
    hf_cache_dir: Callable[[], Path] | None = None,
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check, in a fixed order; never raises.

    Each keyword replaces one contact with the machine; None (the default)
    means the real one, looked up when the checks run:

    - ``probe``: CUDA/MPS availability (``core.engine.device.system_probe()``, which imports torch here)
    - ``which``: the PATH lookup (``shutil.which``)
    - ``bind_error``: ``(host, port) -> OSError | None`` (``port_bind_error``)
    - ``disk_usage``: free space of a path (``shutil.disk_usage``)
    - ``python_version``: ``sys.version_info[:3]``
    - ``torch_probe`` / ``qwen_probe``: the child-process imports (``probe_torch_pair`` / ``probe_qwen_tts``)
    - ``cuda_describe``: the GPU's name and memory (``describe_cuda``)
    - ``local_path``: a checkpoint's folder or None (``ModelStore(settings).local_path``)
    - ``hf_cache_dir``: the Hugging Face hub cache folder

    ``on_check`` is called with each check, in order, as soon as it and those
    before it are done. The checks run concurrently; the slowest is the
    qwen-tts child import (several seconds), so a run takes about that long.
    """
    which = which or shutil.which
    bind_error = bind_error or port_bind_error
    disk_usage = disk_usage or shutil.disk_usage
    python_version = python_version or tuple(sys.version_info[:3])
    torch_probe = torch_probe or probe_torch_pair
    qwen_probe = qwen_probe or probe_qwen_tts
    cuda_describe = cuda_describe or describe_cuda
    hf_cache_dir = hf_cache_dir or _hf_cache_dir

    def device() -> Check:
        if probe is not None:
            return check_device(settings.device, probe, cuda_describe, settings.dtype)
        from core.engine.device import system_probe  # imports torch in this process

        # The CPU bf16 probe's cache is the studio's own: doctor shows what a start would pick.
        return check_device(settings.device, system_probe(settings.data_dir / "cache"), cuda_describe, settings.dtype)

    def disk() -> Check:
        locations: list[tuple[str, Path]] = [("data dir", settings.data_dir)]
        if settings.models_dir is not None:
            locations.append(("models dir", settings.models_dir))
        elif not settings.demo_models:
            locations.append(("model cache", settings.hf_cache_dir or hf_cache_dir()))
        return check_disk(locations, disk_usage)

    def models() -> Check:
        from core.engine.catalog import Catalog

        catalog = Catalog(demo=settings.demo_models)
        find = local_path
        if find is None:
            from core.engine.model_store import ModelStore

            find = ModelStore(settings).local_path
        present = [c.key for c in catalog if find(c) is not None]
        return check_models(settings.demo_models, present, len(catalog.checkpoints))

    def port() -> Check:
        return check_port(settings.host, settings.port, bind_error(settings.host, settings.port))

    tasks: list[tuple[str, Callable[[], Check]]] = [
        ("python", lambda: check_python(python_version)),
        ("torch", lambda: check_torch(torch_probe())),
        ("qwen-tts", lambda: check_qwen_tts(qwen_probe())),
        ("device", device),
        ("ffmpeg", lambda: check_ffmpeg(which)),
        ("data-dir", lambda: check_data_dir(settings.data_dir)),
        ("disk", disk),
        ("models", models),
        ("serving", lambda: check_serving(settings)),
        ("port", port),
    ]
    checks: list[Check] = []
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="doctor") as pool:
        futures = [pool.submit(_guarded, name, run) for name, run in tasks]
        for future in futures:
            check = future.result()  # _guarded never raises
            checks.append(check)
            if on_check is not None:
                on_check(check)
    return checks


def summary(checks: list[Check]) -> str:
    counts = {status: sum(1 for c in checks if c.status == status) for status in ("pass", "warn", "fail")}
    warnings = "warning" if counts["warn"] == 1 else "warnings"
    return f"{counts['pass']} passed, {counts['warn']} {warnings}, {counts['fail']} failed"


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == "fail" for c in checks) else 0
