"""The studio's Gradio file cache: two requests caching one file never see half of it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gradio import processing_utils

from studio.ui.file_cache import install_atomic_file_cache, save_file_to_cache_atomically


def test_concurrent_callers_each_get_the_whole_file(tmp_path):
    # Gradio's own check-then-copy handed a caller a partial file in 21 of 30 such rounds.
    source = tmp_path / "Take 1.wav"
    data = os.urandom(4_000_000)
    source.write_bytes(data)
    for round_ in range(10):
        cache = tmp_path / f"cache-{round_}"
        seen: list[bytes] = []
        errors: list[BaseException] = []

        def cache_and_read() -> None:
            try:
                seen.append(Path(save_file_to_cache_atomically(source, str(cache))).read_bytes())
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=cache_and_read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert len(seen) == 4 and all(copy == data for copy in seen), [len(copy) for copy in seen]
        # One copy, under Gradio's layout (hash folder, cleaned name); no temporary left behind.
        assert [p.relative_to(cache).parts[1] for p in cache.rglob("*") if p.is_file()] == ["Take 1.wav"]


def test_a_cached_file_is_not_copied_again(tmp_path):
    source = tmp_path / "clip.wav"
    source.write_bytes(b"RIFF" + bytes(1000))
    first = save_file_to_cache_atomically(source, str(tmp_path / "cache"))
    before = os.stat(first).st_ino
    assert save_file_to_cache_atomically(source, str(tmp_path / "cache")) == first
    assert os.stat(first).st_ino == before


def test_the_studio_installs_it_where_gradio_looks_it_up():
    install_atomic_file_cache()
    assert processing_utils.save_file_to_cache is save_file_to_cache_atomically
