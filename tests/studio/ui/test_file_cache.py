"""The studio's Gradio file cache: two requests caching one file never see half of it."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from gradio import processing_utils

from studio.ui.file_cache import (
    install_atomic_file_cache,
    save_audio_to_cache_atomically,
    save_bytes_to_cache_atomically,
    save_file_to_cache_atomically,
)


def run_together(target, count: int) -> None:
    """Runs ``target`` in ``count`` threads at once and waits for them all."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


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

        run_together(cache_and_read, 4)
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


def write_while_reading(write, full_size: int, rounds: int = 6) -> list[int]:
    """Four threads write the same content with ``write(cache_dir)`` while a reader keeps reading
    the file they name: the sizes the reader saw that were not the whole file."""
    short: list[int] = []
    for _ in range(rounds):
        cache = tempfile.mkdtemp()
        target: list[str] = []
        done = threading.Event()

        def writer() -> None:
            for _ in range(3):
                target.append(write(cache))

        def reader() -> None:
            while not done.is_set():
                if target and os.path.exists(target[0]):
                    seen = len(Path(target[0]).read_bytes())
                    if seen != full_size:
                        short.append(seen)

        watcher = threading.Thread(target=reader)
        watcher.start()
        run_together(writer, 4)
        done.set()
        watcher.join()
        assert len(set(target)) == 1, set(target)  # Gradio's layout: one file for one content
        assert len(Path(target[0]).read_bytes()) == full_size
        assert not [p for p in Path(cache).iterdir() if p.name.startswith(".")]  # no staging left
    return short


def test_a_player_given_samples_is_never_read_half_written():
    # A take's part as samples (History's part player): Gradio rewrote <hash>/audio.wav in place.
    samples = (np.sin(np.arange(24_000 * 30) / 20) * 20_000).astype(np.int16)
    full = len(
        Path(save_audio_to_cache_atomically(samples, 24_000, format="wav", cache_dir=tempfile.mkdtemp())).read_bytes()
    )
    short = write_while_reading(
        lambda cache: save_audio_to_cache_atomically(samples, 24_000, format="wav", cache_dir=cache), full
    )
    assert not short, f"a reader saw {len(short)} partial files: {short[:5]}"


def test_bytes_are_never_read_half_written():
    data = os.urandom(3_000_000)
    short = write_while_reading(lambda cache: save_bytes_to_cache_atomically(data, "audio.mp3", cache), len(data))
    assert not short, f"a reader saw {len(short)} partial files: {short[:5]}"


def test_the_studio_installs_them_where_gradio_looks_them_up():
    install_atomic_file_cache()
    assert processing_utils.save_file_to_cache is save_file_to_cache_atomically
    assert processing_utils.save_audio_to_cache is save_audio_to_cache_atomically
    assert processing_utils.save_bytes_to_cache is save_bytes_to_cache_atomically
