"""Gradio's file cache, made safe for two requests that write the same file at once.

Gradio serves a file only from its cache folder, so every take, clip and export the studio shows
is first written there, under a folder named by the content's hash. Gradio 6.17 writes in place:

- ``save_file_to_cache`` (a take's file, a download) checks that the copy is missing, then copies;
- ``save_audio_to_cache`` (a player given samples: a take's part, a live take) and
  ``save_bytes_to_cache`` always rewrite ``<hash>/audio.wav``.

Two requests for the same audio (History's picker changing twice while a search is typed, a
timer and a pick, two browser tabs, two studios sharing /tmp/gradio) then truncate a file that
a response is already sending: the browser gets a short answer, and the server logs "Too little
data for declared Content-Length" (CI saw it in History's browser tests). In a loop of four
threads caching an 8 MB file, 21 of 30 rounds handed a caller a partial file.

Here every write goes to a private staging folder first and is renamed into place: a rename is
atomic, so a reader sees no file or the whole file, and a response already being sent keeps the
file it opened. A file already in place is kept, so its inode never changes under a reader. The
layout stays Gradio's (the hash folder, the file name) because Gradio computes it. Gradio has no
option for this, so ``install_atomic_file_cache`` swaps the three module functions, which the
components look up on every call; tests/studio/ui/test_file_cache.py pins them, so an upgrade
that moves them fails loudly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradio import processing_utils, utils
from gradio_client import utils as client_utils

# Gradio's own writers, kept before the swap so staging can call them.
_GRADIO_AUDIO_WRITER = processing_utils.save_audio_to_cache
_GRADIO_BYTES_WRITER = processing_utils.save_bytes_to_cache


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


def staged(write: Callable[..., str]) -> Callable[..., str]:
    """``write`` (a Gradio cache writer taking ``cache_dir``) run in a private staging folder
    inside the cache, its file then renamed to where Gradio would have written it."""

    def write_atomically(*args: Any, **kwargs: Any) -> str:
        # ``cache_dir`` is the writers' last parameter: a keyword for the components, positional
        # for Gradio's MCP server.
        if "cache_dir" in kwargs:
            cache_dir = kwargs.pop("cache_dir")
        else:
            args, cache_dir = args[:-1], args[-1]
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        stage = tempfile.mkdtemp(dir=cache_dir, prefix=".staging-")
        try:
            written = Path(write(*args, cache_dir=stage, **kwargs))
            # <stage>/<hash>/<name> moves to <cache>/<hash>/<name>, in the form Gradio returned.
            target = written.parents[2] / written.parent.name / written.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.replace(written, target)
            return str(target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    write_atomically.__name__ = write.__name__
    return write_atomically


save_audio_to_cache_atomically = staged(_GRADIO_AUDIO_WRITER)
save_bytes_to_cache_atomically = staged(_GRADIO_BYTES_WRITER)


def install_atomic_file_cache() -> None:
    """Makes every Gradio component in this process write its cache atomically (idempotent)."""
    processing_utils.save_file_to_cache = save_file_to_cache_atomically
    processing_utils.save_audio_to_cache = save_audio_to_cache_atomically
    processing_utils.save_bytes_to_cache = save_bytes_to_cache_atomically
