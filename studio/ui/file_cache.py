"""Gradio's file cache, made safe for two requests that cache the same file at once.

Gradio serves a file only from its cache folder, so every audio, clip and export the studio
shows is first copied there (``processing_utils.save_file_to_cache``). Gradio 6.17 checks that
the copy is missing and then copies in place. Two requests for the same take (the History tab
and the jobs panel's timer, two browser tabs, two studio processes sharing /tmp/gradio) can
both see it missing: the second copy truncates a file the first request is already serving,
and the browser gets a short response ("Too little data for declared Content-Length"), or a
caller finds a half-written file. In a loop of four threads caching an 8 MB file, 21 of 30
rounds handed a caller a partial file.

The replacement keeps Gradio's layout (a folder named by the file's hash, the cleaned file
name inside) and copies to a private temporary name first, then renames it into place: a
rename is atomic, so a reader sees no file or the whole file, and a response already being
sent keeps reading the file it opened. Gradio has no option for this, so
``install_atomic_file_cache`` swaps the module function, which ``Block`` looks up on every
call; tests/studio/ui/test_file_cache.py pins it, so an upgrade that moves it fails loudly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from gradio import processing_utils, utils
from gradio_client import utils as client_utils


def save_file_to_cache_atomically(file_path: str | Path, cache_dir: str) -> str:
    """Gradio's ``save_file_to_cache`` with the copy renamed into place once complete."""
    folder = Path(cache_dir) / processing_utils.hash_file(file_path)
    folder.mkdir(exist_ok=True, parents=True)
    name = client_utils.strip_invalid_filename_characters(Path(file_path).name)
    target = utils.abspath(folder / name)
    if not target.exists():
        handle, partial = tempfile.mkstemp(dir=folder, prefix=".partial-")
        os.close(handle)
        try:
            shutil.copy2(file_path, partial)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return str(target)


def install_atomic_file_cache() -> None:
    """Makes every Gradio component in this process cache files atomically (idempotent)."""
    processing_utils.save_file_to_cache = save_file_to_cache_atomically
