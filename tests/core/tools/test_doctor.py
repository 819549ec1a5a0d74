"""The doctor's checks: every pass, warn and fail path, with the machine simulated.

Each contact with the machine is injected, so these run the same on a laptop,
a GPU box or CI. A few tests use the real probes on purpose (the port, the data
dir, the child-process imports with stand-in modules on PYTHONPATH).
"""

from __future__ import annotations

import errno
import socket
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from core.engine.device import CpuBf16, DeviceProbe
from core.settings import Settings
from core.tools import doctor
from core.tools.doctor import Check, exit_code, run_checks, summary

Usage = namedtuple("Usage", "total used free")
GB = 1_000_000_000
NAMES = ["python", "torch", "qwen-tts", "device", "ffmpeg", "data-dir", "disk", "models", "serving", "port"]


def probe(cuda=False, mps=False, cpu_bf16=CpuBf16(None)):
    return DeviceProbe(lambda: cuda, lambda: mps, lambda: cuda, lambda: cpu_bf16)


def torch_report(torch="2.14.1+cu130", audio="2.11.1+cu132", torch_error=None, audio_error=None):
    return {"torch": {"version": torch, "error": torch_error}, "torchaudio": {"version": audio, "error": audio_error}}


@pytest.fixture
def healthy(tmp_path):
    """Probes of a machine where everything is fine (CPU only)."""
    return dict(
        probe=probe(),
        which=lambda name: f"/usr/bin/{name}",
        bind_error=lambda host, port: None,
        disk_usage=lambda path: Usage(500 * GB, 100 * GB, 400 * GB),
        python_version=(3, 11, 7),
        torch_probe=torch_report,
        qwen_probe=lambda: {"version": "0.1.1", "error": None},
        cuda_describe=lambda: "Fake GPU 80GB, 85.0 GB",
        local_path=lambda c: Path("/models") / c.key if c.size == "0.6B" else None,
        hf_cache_dir=lambda: tmp_path / "hf-cache",
    )


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", port=7860)


def run(settings, healthy, **changes) -> dict[str, Check]:
    checks = run_checks(settings, **{**healthy, **changes})
    assert [c.name for c in checks] == NAMES
    return {c.name: c for c in checks}


def test_healthy_machine_passes_everything(settings, healthy):
    seen = []
    checks = run_checks(settings, **healthy, on_check=seen.append)
    assert [c.status for c in checks] == ["pass"] * 10, checks
    assert seen == checks  # streamed in order
    assert exit_code(checks) == 0
    assert summary(checks) == "10 passed, 0 warnings, 0 failed"
    by = {c.name: c for c in checks}
    assert by["python"].detail == "3.11.7"
    assert by["torch"].detail == "torch 2.14.1+cu130, torchaudio 2.11.1+cu132 (both load)"
    assert by["qwen-tts"].detail == "0.1.1"
    assert all(c.fix is None for c in checks)


def test_summary_and_exit_code_count_each_status():
    checks = [Check("a", "pass", ""), Check("b", "warn", ""), Check("c", "fail", ""), Check("d", "warn", "")]
    assert summary(checks) == "1 passed, 2 warnings, 1 failed"
    assert summary(checks[:2]) == "1 passed, 1 warning, 0 failed"
    assert exit_code(checks) == 1 and exit_code(checks[:2]) == 0
    assert checks[2].to_dict() == {"name": "c", "status": "fail", "detail": "", "fix": None}


# --- 1. python --------------------------------------------------------------


def test_python_too_old_fails_with_a_fix(settings, healthy):
    check = run(settings, healthy, python_version=(3, 9, 18))["python"]
    assert check.status == "fail" and "3.9.18" in check.detail and "3.10" in check.detail
    assert "venv" in check.fix
    assert run(settings, healthy, python_version=(3, 10, 0))["python"].status == "pass"


# --- 2. torch / torchaudio ---------------------------------------------------


@pytest.mark.parametrize(
    "report, expected",
    [
        (
            torch_report(audio_error="OSError: libtorchaudio.so: undefined symbol: _ZN3c10"),
            "torchaudio 2.11.1+cu132 does not load with it: OSError: libtorchaudio.so: undefined symbol",
        ),
        (
            torch_report(audio=None, audio_error="ModuleNotFoundError: No module named 'torchaudio'"),
            "torchaudio is not installed",
        ),
        (
            torch_report(torch=None, audio=None, torch_error="ModuleNotFoundError: No module named 'torch'"),
            "torch does not load",
        ),
    ],
)
def test_torch_pair_failures_point_at_the_lock_resync(settings, healthy, report, expected):
    check = run(settings, healthy, torch_probe=lambda: report)["torch"]
    assert check.status == "fail" and expected in check.detail
    lock = Path(__file__).resolve().parents[3] / "requirements" / "studio.lock"
    assert check.fix == doctor.repair_command()
    assert check.fix.endswith(f"-m pip install -r {lock} -e {lock.parent.parent}")


def test_repair_command_without_a_lock_pins_the_known_good_set(tmp_path):
    fix = doctor.repair_command(python="/venv/bin/python", lock=tmp_path / "missing.lock")
    assert fix == ("/venv/bin/python -m pip install 'torch==2.14.1' 'torchaudio==2.11.1' 'qwen-tts==0.1.1'")


def test_different_version_strings_pass_when_both_really_load(settings, healthy):
    # torch 2.14.1 with torchaudio 2.11.1 is the locked, working pair: the doctor
    # judges by loading, not by comparing release numbers.
    report = torch_report(torch="2.14.1+cu130", audio="2.11.1+cu132")
    check = run(settings, healthy, torch_probe=lambda: report)["torch"]
    assert check.status == "pass" and "2.14.1+cu130" in check.detail and "2.11.1+cu132" in check.detail


def test_torch_probe_timeout_warns_and_a_dead_child_fails(settings, healthy):
    timeout = {"probe_error": "the import did not finish within 45 s", "timeout": True}
    assert run(settings, healthy, torch_probe=lambda: timeout)["torch"].status == "warn"
    dead = {"probe_error": "python exited with code -11"}
    check = run(settings, healthy, torch_probe=lambda: dead)["torch"]
    assert check.status == "fail" and "code -11" in check.detail


def _fake_modules(tmp_path: Path, monkeypatch, **modules: str) -> None:
    """Stand-in packages that shadow the real ones in the child interpreter."""
    root = tmp_path / "fake-site"
    for name, source in modules.items():
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text(source, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(root))


def test_real_child_probe_survives_a_torchaudio_that_raises_oserror(tmp_path, monkeypatch):
    # What a mismatched pair does: the C extension fails to load at import.
    _fake_modules(
        tmp_path,
        monkeypatch,
        torchaudio=(
            "raise OSError('/venv/torchaudio/lib/libtorchaudio.so: undefined symbol: _ZN3c1017RegisterOperators')\n"
        ),
    )
    check = doctor.check_torch(doctor.probe_torch_pair())
    assert check.status == "fail"
    assert "OSError" in check.detail and "undefined symbol" in check.detail
    assert check.fix == doctor.repair_command()


def test_real_child_probe_loads_the_compiled_library(tmp_path, monkeypatch):
    # A torchaudio whose import succeeds but whose shared library the dynamic
    # loader refuses: only loading it (not reading its version) finds this.
    broken = tmp_path / "libtorchaudio.so"
    broken.write_bytes(b"not an ELF file at all" * 10)
    _fake_modules(tmp_path, monkeypatch, torchaudio="__version__ = '2.11.1'\n")
    extension = tmp_path / "fake-site" / "torchaudio" / "_extension.py"
    extension.write_text(f"import ctypes\nctypes.CDLL({str(broken)!r})\n", encoding="utf-8")
    check = doctor.check_torch(doctor.probe_torch_pair())
    assert check.status == "fail", check
    assert "torchaudio 2.11.1 does not load with it: OSError" in check.detail
    assert str(broken) in check.detail
    assert check.fix == doctor.repair_command()


def test_real_child_probe_passes_on_this_environment():
    check = doctor.check_torch(doctor.probe_torch_pair())
    assert check.status == "pass", check


# --- 3. qwen-tts --------------------------------------------------------------


def test_qwen_tts_not_importable_fails_with_a_fix(settings, healthy):
    missing = {"version": None, "error": "ModuleNotFoundError: No module named 'qwen_tts'"}
    check = run(settings, healthy, qwen_probe=lambda: missing)["qwen-tts"]
    assert check.status == "fail" and "No module named 'qwen_tts'" in check.detail
    assert check.fix == doctor.repair_command()


def test_qwen_tts_broken_by_torchaudio_points_at_the_torch_pair(settings, healthy):
    broken = {"version": "0.1.1", "error": "OSError: libtorchaudio.so: undefined symbol: x"}
    check = run(settings, healthy, qwen_probe=lambda: broken)["qwen-tts"]
    assert check.status == "fail" and "0.1.1 is installed but" in check.detail
    assert check.fix == doctor.repair_command()


def test_qwen_tts_other_version_or_slow_import_warns(settings, healthy):
    other = run(settings, healthy, qwen_probe=lambda: {"version": "0.2.0", "error": None})["qwen-tts"]
    assert other.status == "warn" and "0.2.0" in other.detail and other.fix == doctor.repair_command()
    slow = {"probe_error": "the import did not finish within 60 s", "timeout": True}
    assert run(settings, healthy, qwen_probe=lambda: slow)["qwen-tts"].status == "warn"


def test_real_child_probe_reports_a_failing_qwen_tts_import(tmp_path, monkeypatch):
    _fake_modules(
        tmp_path, monkeypatch, qwen_tts="print('banner on stdout')\nraise ImportError('needs transformers 4.57.3')\n"
    )
    check = doctor.check_qwen_tts(doctor.probe_qwen_tts())
    assert check.status == "fail" and "ImportError: needs transformers 4.57.3" in check.detail


# --- 4. device ------------------------------------------------------------------


def test_device_reports_what_auto_would_pick(settings, healthy):
    auto = settings.replace(dtype="auto")
    cuda = run(auto, healthy, probe=probe(cuda=True, mps=True))["device"]
    assert cuda.status == "pass"
    assert cuda.detail == "cuda: Fake GPU 80GB, 85.0 GB; dtype bfloat16 (auto: GPU supports bf16)"
    mps = run(auto, healthy, probe=probe(mps=True))["device"]
    assert mps.status == "pass" and mps.detail.startswith("mps")
    cpu = run(auto, healthy, probe=probe())["device"]
    assert cpu.status == "pass" and cpu.detail.startswith("cpu only")
    assert cpu.detail.endswith("; dtype float32 (auto: CPU has no native bf16 (AVX512-BF16, AMX or Arm BF16))")
    # A CPU with native bf16 that the probe found faster: auto says bf16, and why.
    bf16 = run(auto, healthy, probe=probe(cpu_bf16=CpuBf16("AVX512-BF16", 0.42)))["device"]
    assert bf16.detail.endswith("; dtype bfloat16 (auto: CPU has AVX512-BF16, probe 0.42x fp32)")
    slow = run(auto, healthy, probe=probe(cpu_bf16=CpuBf16("AVX512-BF16", 1.3)))["device"]
    assert "dtype float32 (auto: CPU has AVX512-BF16, probe 1.30x fp32 (not under 0.8x))" in slow.detail
    exact = run(settings.replace(dtype="float32"), healthy, probe=probe(cpu_bf16=CpuBf16("AMX", 0.3)))["device"]
    assert exact.detail.endswith("; dtype float32 (--dtype float32)")
    half = run(settings.replace(dtype="float16"), healthy, probe=probe())["device"]
    assert half.status == "fail" and "float16 is not supported on the CPU" in half.detail


@pytest.mark.parametrize("device, available", [("cuda", probe(mps=True)), ("mps", probe(cuda=True)), ("cuda", probe())])
def test_asking_for_a_missing_device_fails(settings, healthy, device, available):
    check = run(settings.replace(device=device), healthy, probe=available)["device"]
    assert check.status == "fail" and f"setting 'device' is {device}" in check.detail
    assert "--device auto" in check.fix


def test_explicit_cpu_passes_and_mentions_an_unused_gpu(settings, healthy):
    check = run(settings.replace(device="cpu"), healthy, probe=probe(cuda=True))["device"]
    assert check.status == "pass" and "unused" in check.detail


def test_a_crashing_check_becomes_one_failed_line(settings, healthy):
    def broken() -> bool:
        raise RuntimeError("CUDA driver initialization failed\nlong second line")

    checks = run(settings, healthy, probe=DeviceProbe(broken, lambda: False, lambda: False))
    check = checks["device"]
    assert check.status == "fail"
    assert check.detail == "the check itself crashed: RuntimeError: CUDA driver initialization failed"
    assert sum(c.status == "fail" for c in checks.values()) == 1  # the others still ran


def test_default_device_probe_is_the_real_one(settings, healthy):
    del healthy["probe"]
    assert run(settings, healthy)["device"].status == "pass"


# --- 5. ffmpeg ---------------------------------------------------------------------


def test_missing_ffmpeg_warns_with_install_hint(settings, healthy):
    check = run(settings, healthy, which=lambda name: None)["ffmpeg"]
    assert check.status == "warn" and check.detail == "not found on PATH"
    assert check.fix == "MP3 export needs ffmpeg: brew install ffmpeg / apt install ffmpeg"
    assert run(settings, healthy)["ffmpeg"].detail == "/usr/bin/ffmpeg"


# --- 6. data dir ---------------------------------------------------------------------


def test_data_dir_is_created_and_probed_without_leaving_files(settings, healthy):
    check = run(settings, healthy)["data-dir"]
    assert check.status == "pass"
    assert settings.data_dir.is_dir() and list(settings.data_dir.iterdir()) == []


def test_unwritable_data_dir_fails_with_path_and_fix(tmp_path, healthy):
    # Tests run as root, where chmod does not stop writes: a path under a regular file cannot exist.
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder", encoding="utf-8")
    bad = blocker / "data"
    check = run(Settings(data_dir=bad), healthy)["data-dir"]
    assert check.status == "fail" and str(bad) in check.detail
    assert "--data-dir" in check.fix


# --- 7. disk -----------------------------------------------------------------------------


@pytest.mark.parametrize("free, status", [(400 * GB, "pass"), (9 * GB, "warn"), (GB // 2, "fail")])
def test_free_disk_thresholds(settings, healthy, free, status):
    check = run(settings, healthy, disk_usage=lambda path: Usage(500 * GB, 0, free))["disk"]
    assert check.status == status
    if status == "warn":
        assert "10–14 GB" in check.fix
    if status == "fail":
        assert "under 1 GB" in check.fix


def test_disk_looks_at_the_data_dir_and_where_models_go(tmp_path, settings, healthy):
    asked: list[Path] = []

    def usage(path):
        asked.append(path)
        return Usage(500 * GB, 0, 400 * GB)

    (tmp_path / "hf-cache").mkdir()
    check = run(settings, healthy, disk_usage=usage)["disk"]
    # The data dir does not exist yet, so its nearest existing parent is measured.
    assert tmp_path / "hf-cache" in asked and any(settings.data_dir.is_relative_to(p) for p in asked)
    assert "data dir" in check.detail and "model cache" in check.detail
    asked.clear()
    demo = run(settings.replace(demo_models=True), healthy, disk_usage=usage)["disk"]
    assert "model cache" not in demo.detail
    models_dir = run(settings.replace(models_dir=tmp_path / "models"), healthy, disk_usage=usage)["disk"]
    assert "models dir" in models_dir.detail


def test_the_least_free_location_decides(tmp_path, settings, healthy):
    (tmp_path / "hf-cache").mkdir()

    def usage(path):
        return Usage(500 * GB, 0, 2 * GB if "hf-cache" in str(path) else 400 * GB)

    check = run(settings, healthy, disk_usage=usage)["disk"]
    assert check.status == "warn"


# --- 8. models ---------------------------------------------------------------------------


def test_some_checkpoints_present_pass_and_are_listed(settings, healthy):
    check = run(settings, healthy)["models"]
    assert check.status == "pass" and check.detail == "2 of 5 present: 0.6B-CustomVoice, 0.6B-Base"


def test_no_checkpoints_warns_with_the_download_command(settings, healthy):
    check = run(settings, healthy, local_path=lambda c: None)["models"]
    assert check.status == "warn"
    assert "qwen-tts-studio models download 0.6B-Base" in check.fix and "--demo-models" in check.fix


def test_no_demo_models_warns_with_build_demo(settings, healthy):
    check = run(settings.replace(demo_models=True), healthy, local_path=lambda c: None)["models"]
    assert check.status == "warn" and "demo models" in check.detail
    assert "models build-demo" in check.fix


def test_models_uses_the_real_model_store(demo_settings, healthy):
    del healthy["local_path"]
    check = run(demo_settings, healthy)["models"]
    assert check.status == "pass" and check.detail.startswith("all 5 present: demo-")
    empty = run(Settings(data_dir=demo_settings.data_dir, demo_models=True), healthy)["models"]
    assert empty.status == "warn"


# --- serving safety (what the studio refuses at start) ----------------------------------


def test_lan_host_without_password_fails_like_the_studio_would(settings, healthy):
    check = run(settings.replace(host="0.0.0.0"), healthy)["serving"]
    assert check.status == "fail" and "without a password" in check.detail and "--auth" in check.detail
    ok = run(settings.replace(host="0.0.0.0", auth="ann:secret"), healthy)["serving"]
    assert ok.status == "pass" and ok.detail == "http on 0.0.0.0 (the network), password for 1 user(s)"
    assert "secret" not in ok.detail
    trusted = run(settings.replace(host="0.0.0.0", insecure_no_auth=True), healthy)["serving"]
    assert trusted.status == "pass"
    assert run(settings, healthy)["serving"].detail == "http on 127.0.0.1 (this machine only), no password"


def test_half_a_tls_pair_fails(settings, healthy, tmp_path):
    check = run(settings.replace(ssl_certfile=tmp_path / "cert.pem"), healthy)["serving"]
    assert check.status == "fail" and "--ssl-keyfile" in check.detail


# --- 9. port ------------------------------------------------------------------------------


def test_free_port_passes_with_the_real_probe(settings, healthy):
    del healthy["bind_error"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = run(settings.replace(port=port), healthy)["port"]
    assert check.status == "pass" and check.detail == f"127.0.0.1:{port} is free"


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_busy_port_fails_with_the_real_probe(settings, healthy, host):
    del healthy["bind_error"]
    settings = settings.replace(insecure_no_auth=True)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check = run(settings.replace(host=host, port=port), healthy)["port"]
    assert check.status == "fail" and check.detail == f"port {port} is in use"
    assert check.fix == f"pass --port {port + 1} or stop the other process"


@pytest.mark.parametrize(
    "error, detail, fix",
    [
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "not an address of this machine", "--host"),
        (OSError(errno.EACCES, "Permission denied"), "no permission", "above 1023"),
        (socket.gaierror(-2, "Name or service not known"), "does not resolve", "--host"),
    ],
)
def test_other_bind_errors_fail_with_a_matching_fix(settings, healthy, error, detail, fix):
    check = run(settings.replace(host="studio.invalid"), healthy, bind_error=lambda h, p: error)["port"]
    assert check.status == "fail" and detail in check.detail and fix in check.fix


def test_unresolvable_host_with_the_real_probe(settings, healthy):
    del healthy["bind_error"]
    check = run(settings.replace(host="no-such-host.invalid"), healthy)["port"]
    assert check.status == "fail" and "does not resolve" in check.detail


# --- the pins -----------------------------------------------------------------------------


def test_pins_agree_with_pyproject_and_the_locks():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    from packaging.requirements import Requirement

    ranges = {Requirement(dep).name: Requirement(dep).specifier for dep in deps}
    assert doctor.TORCH_VERSION in ranges["torch"]
    assert doctor.TORCHAUDIO_VERSION in ranges["torchaudio"]
    assert f"qwen-tts=={doctor.QWEN_TTS_VERSION}" in deps
    # The exact set every install uses pins the same known-good pair.
    for lock in ("studio.lock", "test.lock"):
        pins = set((pyproject.parent / "requirements" / lock).read_text(encoding="utf-8").split())
        assert {
            f"torch=={doctor.TORCH_VERSION}",
            f"torchaudio=={doctor.TORCHAUDIO_VERSION}",
            f"qwen-tts=={doctor.QWEN_TTS_VERSION}",
        } <= pins, lock
