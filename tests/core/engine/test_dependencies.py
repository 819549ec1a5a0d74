"""A broken install is reported as a broken install, never as a disk problem.

Each test makes a real shared library fail to load: a stand-in `torchaudio`
package, first on the path of a child interpreter, whose import hands a file
that is not a library to the dynamic loader (what a torch/torchaudio pair built
for each other's wrong release does with `undefined symbol`). The child then
runs the studio's real code paths: the model loader, the demo builder (through
`synth --demo-models`) and the benchmark-architecture builder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.engine.dependencies import dependency_error, failing_package, import_model_code
from core.errors import DependencyError

DISK_WORDS = ("writable", "disk", "free space", "download is complete")


@pytest.fixture
def broken_torchaudio(tmp_path: Path) -> dict[str, str]:
    """Environment for a child whose `import torchaudio` fails inside the loader."""
    site = tmp_path / "site-packages"
    package = site / "torchaudio"
    (package / "lib").mkdir(parents=True)
    library = package / "lib" / "libtorchaudio.so"
    library.write_bytes(b"this is not a shared library\n" * 8)
    (package / "__init__.py").write_text(
        "import ctypes, os\nctypes.CDLL(os.path.join(os.path.dirname(__file__), 'lib', 'libtorchaudio.so'))\n",
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(Path(__file__).resolve().parents[3])])
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _assert_honest(message: str) -> None:
    assert "Could not load torchaudio" in message, message
    assert "libtorchaudio.so" in message  # the loader's own reason, quoted
    assert "qwen-tts-studio doctor" in message
    assert not any(word in message for word in DISK_WORDS), message


def test_import_model_code_names_the_package_and_the_loader_reason(broken_torchaudio):
    done = _run(
        broken_torchaudio,
        sys.executable,
        "-c",
        (
            "from core.engine.dependencies import import_model_code\n"
            "from core.errors import DependencyError\n"
            "try:\n    import_model_code('the test')\n"
            "except DependencyError as exc:\n    print(exc)\n"
        ),
    )
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip().splitlines()[-1]
    _assert_honest(message)
    assert "which the test needs" in message


def test_model_load_reports_the_broken_library_not_a_bad_download(broken_torchaudio, demo_checkpoints):
    done = _run(
        broken_torchaudio,
        sys.executable,
        "-c",
        (
            "import sys\nfrom pathlib import Path\n"
            "from core.engine.model_manager import qwen_loader\n"
            "from core.errors import DependencyError\n"
            "import torch\n"
            "try:\n    qwen_loader(Path(sys.argv[1]), 'cpu', torch.float32)\n"
            "except DependencyError as exc:\n    print(exc)\n"
        ),
        str(demo_checkpoints["custom_voice"]),
    )
    assert done.returncode == 0, done.stderr
    _assert_honest(done.stdout.strip().splitlines()[-1])


def test_synth_with_demo_models_says_which_package_failed(broken_torchaudio, tmp_path):
    cli = Path(sys.executable).with_name("qwen-tts-studio")
    done = _run(
        broken_torchaudio,
        str(cli),
        "synth",
        "--demo-models",
        "--data-dir",
        str(tmp_path / "data"),
        "--mode",
        "custom",
        "--speaker",
        "Ryan",
        "--text",
        "Hello there.",
        "--out",
        str(tmp_path / "out.wav"),
    )
    assert done.returncode != 0
    _assert_honest(done.stderr + done.stdout)
    assert not (tmp_path / "out.wav").exists()


def test_arch_builder_says_which_package_failed(broken_torchaudio, tmp_path):
    done = _run(
        broken_torchaudio,
        sys.executable,
        "-c",
        (
            "import sys\nfrom pathlib import Path\n"
            "from core.tools.arch_models import ARCH_SPECS, build_arch_checkpoints\n"
            "from core.errors import StudioError\n"
            "try:\n    build_arch_checkpoints(Path(sys.argv[1]), ARCH_SPECS['0.6b'], modes=['custom_voice'])\n"
            "except StudioError as exc:\n    print(type(exc).__name__, exc)\n"
        ),
        str(tmp_path / "arch"),
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("DependencyError ")
    _assert_honest(line)


def test_failing_package_reads_the_import_error_when_no_path_is_given():
    try:
        import qwen_tts_studio_no_such_package  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as exc:
        assert failing_package(exc) == "qwen_tts_studio_no_such_package"
        assert "No module named" in str(dependency_error(exc))


def test_import_model_code_passes_on_this_install():
    assert import_model_code().__name__ == "qwen_tts"
    assert issubclass(DependencyError, Exception)
