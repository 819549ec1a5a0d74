"""Importing the model code, with an honest error when the install is broken.

A torch/torchaudio pair that does not match fails inside the dynamic loader
with an ``OSError`` (``undefined symbol ...``). Code that also writes files
catches ``OSError`` for disk problems, so without this module a broken install
reads as "check that the folder is writable". Every path that needs the model
code (model load, demo and benchmark builders) imports it through here first.
"""

from __future__ import annotations

import re
import traceback
from types import ModuleType

from core.errors import DependencyError

DOCTOR_HINT = "Run `qwen-tts-studio doctor`: it checks the install and prints the command that repairs it."

# ".../site-packages/torchaudio/lib/libtorchaudio.so: undefined symbol: ..."
_PACKAGE_IN_PATH = re.compile(r"(?:site|dist)-packages[/\\]([A-Za-z_][A-Za-z0-9_]*)[/\\]")
_NO_MODULE = re.compile(r"No module named '([^'.]+)")


def import_model_code(purpose: str = "the studio") -> ModuleType:
    """Imports ``qwen_tts`` (and so torch and torchaudio's compiled library).

    Raises:
        DependencyError: a package is missing or its library does not load; the
            message names the package, quotes the loader in one line and points
            to the doctor.
    """
    try:
        import qwen_tts
    except (ImportError, OSError) as exc:
        raise dependency_error(exc, purpose) from exc
    return qwen_tts


def dependency_error(exc: BaseException, purpose: str = "the studio") -> DependencyError:
    package = failing_package(exc)
    return DependencyError(f"Could not load {package}, which {purpose} needs: {loader_reason(exc)}. {DOCTOR_HINT}")


def failing_package(exc: BaseException) -> str:
    """The distribution whose import failed, as precisely as the error allows.

    Order: the shared library's path in the loader's message, then the deepest
    traceback frame inside site-packages, then the module an ImportError names.
    """
    match = _PACKAGE_IN_PATH.search(str(exc))
    if match:
        return match.group(1)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        match = _PACKAGE_IN_PATH.search(frame.filename)
        if match:
            return match.group(1)
    if isinstance(exc, ImportError):
        if exc.name:
            return exc.name.split(".")[0]
        match = _NO_MODULE.search(str(exc))
        if match:
            return match.group(1)
    return "a required package"


def loader_reason(exc: BaseException, limit: int = 240) -> str:
    """The loader's own words on one line, e.g. ``libtorchaudio.so: undefined symbol: ...``."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
