"""Crash safety: SIGKILL a real studio process in the middle of writing, then restart it.

The studio runs as a real subprocess (``python -m studio.cli --demo-models``).
"In the middle" is made real without any test hook in the product:

- deterministically, through the library's and the history's own cross-process
  lock (``<folder>/.lock``, the contract that lets a second studio or the CLI
  share a data dir): while the test holds it, a save stages its files in a
  ``.tmp-*`` folder and then waits for the lock to publish them, so the kill
  lands exactly between "files written" and "entry published";
- by watching the folders and killing the moment some but not all voices of an
  import have been published;
- by killing after a random delay, anywhere in the request.

The seed of the random choices is printed, so a failure can be replayed with
QUALITY_CRASH_SEED.

After every kill a new server starts on the same data dir and the test checks:
``/voices`` and the history load; no half-written entry is listed (no ``.tmp-*``
voice or take, every listed voice has a parseable voice.json and a decodable
reference.wav whose hash matches its record, every listed take decodes);
everything that was saved before the kill is byte-for-byte intact; and the
library and history still accept writes (no stale lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from tests.conftest import free_port
from tests.quality.conftest import copy_demo_models, tone, voice_zip, write_wav

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("QUALITY_CRASH_SEED", time.time_ns() % 1_000_000))
FAST = {"seed": 3, "max_seconds": 1, "speaker": "Ryan", "size": "0.6B"}
STARTUP_TIMEOUT_S = 180


class Studio:
    """One real studio subprocess on a data dir; restartable after a kill."""

    def __init__(self, data_dir: Path, log_dir: Path):
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.client: Client | None = None
        self.starts = 0

    @property
    def voices_dir(self) -> Path:
        return self.data_dir / "voices"

    @property
    def history_dir(self) -> Path:
        return self.data_dir / "history"

    def start(self) -> Client:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("QWEN_TTS_STUDIO_")}
        env.update(
            HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", QWEN_TTS_STUDIO_CONFIG=str(self.log_dir / "no-config.toml")
        )
        self.starts += 1
        log = open(self.log_dir / f"studio-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "studio.cli",
                "--demo-models",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(port),
                "--device",
                "cpu",
                "--dtype",
                "float32",
                "--max-resident",
                "2",
                "--rate-limit-per-minute",
                "0",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"the studio exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(url, timeout=2).read(1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"the studio did not answer within {STARTUP_TIMEOUT_S} s:\n{self.log_tail()}")
                time.sleep(0.1)
        self.client = Client(url, verbose=False)
        return self.client

    def kill(self) -> None:
        """SIGKILL the whole process group (the server and any ffmpeg it runs), like a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)

    def log_tail(self, lines: int = 40) -> str:
        text = (self.log_dir / f"studio-{self.starts}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# --- what must hold after a restart ----------------------------------------------


def folder_hashes(folder: Path) -> dict[str, str]:
    """Every file of an entry (hidden temp files of an interrupted edit aside) -> SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def staging(folder: Path, ignore: set[str] = frozenset()) -> set[str]:
    """The ``.tmp-*`` staging folders in ``folder``, but those in ``ignore`` (left by earlier kills)."""
    try:
        return {e.name for e in os.scandir(folder) if e.name.startswith(".tmp-")} - ignore
    except FileNotFoundError:
        return set()


def check_studio(studio: Studio, saved: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Asserts every invariant on a freshly restarted studio; returns what is saved now (key -> file hashes)."""
    from core.audio.io import load_audio
    from core.storage.history import History
    from core.storage.library import VoiceLibrary

    client = studio.client
    assert client.predict(api_name="/languages")[0] == "Auto"
    voices = client.predict(api_name="/voices")
    now: dict[str, dict[str, str]] = {}
    for voice in voices:
        assert not voice["id"].startswith("."), f"a staging folder is listed as a voice: {voice['id']}"
        folder = studio.voices_dir / voice["id"]
        record = json.loads((folder / "voice.json").read_text(encoding="utf-8"))
        assert record["id"] == voice["id"] and record["name"] == voice["name"]
        wav = (folder / "reference.wav").read_bytes()
        assert hashlib.sha256(wav).hexdigest() == record["reference_sha256"], f"{voice['id']}: clip and record differ"
        info = sf.info(str(folder / "reference.wav"))
        assert info.frames > 0 and info.samplerate == 24_000
        now[f"voice:{voice['id']}"] = folder_hashes(folder)

    library = VoiceLibrary(studio.voices_dir)
    assert sorted(v.id for v in library.list()) == sorted(v["id"] for v in voices)
    assert not library.warnings, library.warnings
    history = History(studio.history_dir)
    takes = history.list()
    assert not history.warnings, history.warnings
    for take in takes:
        assert not take.id.startswith(".")
        assert len(load_audio(take.audio_path).samples) > 0
        now[f"take:{take.id}"] = folder_hashes(studio.history_dir / take.id)

    for key, hashes in saved.items():
        assert key in now, f"{key} was saved before the crash and is gone after it"
        assert now[key] == hashes, f"{key} changed on disk across the crash"
    return now


def kill_when(studio: Studio, job, condition: Callable[[], bool], slack_s: float, timeout_s: float = 120) -> bool:
    """Polls ``condition`` about every millisecond and SIGKILLs the studio ``slack_s`` after it
    first holds. Returns whether it held before the request finished."""
    deadline = time.monotonic() + timeout_s
    hit = False
    while time.monotonic() < deadline:
        if condition():
            hit = True
            break
        if job.done():
            break
        time.sleep(0.0005)
    if hit and slack_s:
        time.sleep(slack_s)
    studio.kill()
    return hit


def kill_after(studio: Studio, delay_s: float) -> None:
    time.sleep(delay_s)
    studio.kill()


@contextmanager
def holding_lock(folder: Path) -> Iterator[None]:
    """Holds the folder's cross-process lock, as another studio process writing there would."""
    with filelock.FileLock(str(folder / ".lock"), timeout=30):
        yield


def staged(folder: Path, file_name: str, ignore: set[str]) -> bool:
    """A new staging folder holds ``file_name``: the entry is written but not yet published."""
    return any((folder / name / file_name).is_file() for name in staging(folder, ignore))


# --- the lab: one data dir, one studio at a time ---------------------------------


@pytest.fixture(scope="module")
def rng() -> random.Random:
    print(f"\ncrash-safety random seed: {SEED} (set QUALITY_CRASH_SEED={SEED} to replay)")
    return random.Random(SEED)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, speech_wav) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("crash-clips")
    return {
        "speech": speech_wav,
        # Long-ish and wide: decoding, mixing, resampling and writing it take a while.
        "long": write_wav(d / "long-take.wav", tone(40.0, sr=48_000, channels=2), sr=48_000),
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory, demo_checkpoints, clips):
    """A studio subprocess on its own data dir, seeded with voices and takes."""
    root = tmp_path_factory.mktemp("crash-lab")
    data_dir = root / "data"
    data_dir.mkdir()
    copy_demo_models(demo_checkpoints, data_dir)
    studio = Studio(data_dir, root)
    client = studio.start()
    for name in ("Seed Anna", "Seed Bob"):
        client.predict(
            reference=handle_file(str(clips["speech"])),
            transcript="The quick brown fox.",
            name=name,
            api_name="/voice_save",
        )
    client.predict(text="A take saved long before any crash.", **FAST, api_name="/custom_voice")
    lab = {"studio": studio, "saved": check_studio(studio, {}), "clips": clips, "root": root}
    try:
        yield lab
    finally:
        studio.kill()


def restart_and_check(lab: dict) -> Client:
    studio = lab["studio"]
    client = studio.start()
    lab["saved"] = check_studio(studio, lab["saved"])
    return client


def ensure_running(lab: dict) -> Client:
    studio = lab["studio"]
    if studio.proc is None or studio.proc.poll() is not None:
        return restart_and_check(lab)
    return studio.client


# --- the kills --------------------------------------------------------------------------


def test_kill_during_voice_save(lab, rng):
    studio, clips = lab["studio"], lab["clips"]
    client = ensure_running(lab)
    start = time.monotonic()
    client.predict(reference=handle_file(str(clips["long"])), name="Long Calibration", api_name="/voice_save")
    took = time.monotonic() - start

    mid_write = 0
    for attempt in range(2):
        name = f"Killed Save {attempt}"
        old = staging(studio.voices_dir)
        job = studio.client.submit(reference=handle_file(str(clips["long"])), name=name, api_name="/voice_save")
        if attempt == 0:  # the clip is written, the record and the rename are not
            with holding_lock(studio.voices_dir):
                assert kill_when(
                    studio, job, lambda: staged(studio.voices_dir, "reference.wav", old), slack_s=rng.uniform(0.05, 0.3)
                )
            assert staging(studio.voices_dir, old), "the kill did not land in the middle of the save"
        else:  # anywhere in the request
            kill_after(studio, rng.uniform(0.2, 1.1) * took)
        mid_write += bool(staging(studio.voices_dir, old))
        client = restart_and_check(lab)
        listed = {v["name"]: v for v in client.predict(api_name="/voices")}
        # All or nothing: either the voice is there in full (checked above) or it is not listed at all.
        if name in listed:
            assert listed[name]["reference_seconds"] > 35
    assert mid_write, "no kill landed while a voice was being written"
    # The library lock died with the process: saving works at once.
    saved = client.predict(reference=handle_file(str(clips["speech"])), name="After The Crash", api_name="/voice_save")
    assert saved["name"] == "After The Crash"
    lab["saved"] = check_studio(studio, lab["saved"])


def test_kill_during_history_write(lab, rng):
    studio = lab["studio"]
    client = ensure_running(lab)
    text = "This take is being written to the history when the power goes out."
    client.predict(text=text, **FAST, format="mp3", api_name="/custom_voice")  # loads the model
    start = time.monotonic()
    client.predict(text=text, **FAST, format="mp3", api_name="/custom_voice")
    took = time.monotonic() - start

    mid_write = 0
    for attempt in range(2):
        before = {t for t in os.listdir(studio.history_dir) if not t.startswith(".")}
        old = staging(studio.history_dir)
        job = studio.client.submit(text=text, **FAST, format="mp3" if attempt == 0 else "wav", api_name="/custom_voice")
        if attempt == 0:  # the take's audio is encoded and written, its record and the rename are not
            with holding_lock(studio.history_dir):
                assert kill_when(
                    studio, job, lambda: staged(studio.history_dir, "take.mp3", old), slack_s=rng.uniform(0.05, 0.3)
                )
            assert staging(studio.history_dir, old), "the kill did not land in the middle of the history write"
        else:  # around the end of the generation
            kill_after(studio, rng.uniform(0.6, 1.1) * took)
        mid_write += bool(staging(studio.history_dir, old))
        client = restart_and_check(lab)
        # The interrupted take is either complete (checked above) or absent.
        after = {t for t in os.listdir(studio.history_dir) if not t.startswith(".")}
        assert len(after - before) <= 1
    assert mid_write, "no kill landed while a take was being written"
    path, info = client.predict(text="The history still takes new takes.", **FAST, api_name="/custom_voice")
    assert (studio.history_dir / info["take_id"]).is_dir()
    lab["saved"] = check_studio(studio, lab["saved"])


def test_kill_during_import(lab, rng):
    studio = lab["studio"]
    client = ensure_running(lab)
    count = 80
    outcomes = []
    for attempt in range(2):
        ids = [f"crash{attempt}-v{i:03d}" for i in range(count)]
        archive = voice_zip(
            lab["root"] / f"many-{attempt}.zip",
            [(voice_id, f"Crash {attempt} Voice {i:03d}") for i, voice_id in enumerate(ids)],
            seconds=2.0,  # imports pass the speech check, which needs over 1 s of speech
        )
        k = rng.randint(1, count // 3)
        old = staging(studio.voices_dir)
        job = studio.client.submit(file=handle_file(str(archive)), api_name="/voice_import")
        if attempt == 0:  # while the voices are being published, one rename at a time
            condition = lambda: sum(os.path.isdir(studio.voices_dir / v) for v in ids[:k]) >= k  # noqa: E731
            hit = kill_when(studio, job, condition, slack_s=rng.uniform(0, 0.01))
        else:  # every voice is staged, the import waits for the lock to publish them
            with holding_lock(studio.voices_dir):
                hit = kill_when(
                    studio, job, lambda: len(staging(studio.voices_dir, old)) >= count, slack_s=rng.uniform(0.05, 0.3)
                )
            assert hit and not (studio.voices_dir / ids[0]).exists(), "the import was not parked before publishing"
        leftovers = len(staging(studio.voices_dir, old))
        client = restart_and_check(lab)
        imported = [v for v in client.predict(api_name="/voices") if v["id"] in ids]
        outcomes.append((hit, leftovers, len(imported)))
        # All or nothing: a kill in the middle leaves none of the import listed.
        assert len({v["id"] for v in imported}) == len(imported)
        assert len(imported) in (0, count)
        if hit:
            assert imported == [], "a crashed import must be rolled back"
    print(f"import kills (condition met, .tmp leftovers, voices installed of {count}): {outcomes}")
    assert any(hit for hit, _, _ in outcomes), "no kill landed in the middle of an import"
    again = client.predict(file=handle_file(str(lab["root"] / "many-0.zip")), api_name="/voice_import")
    assert len(again) == count
    lab["saved"] = check_studio(studio, lab["saved"])


# --- a crash's leftovers, made by hand ------------------------------------------------


def test_recovery_from_the_leftovers_of_a_crash(lab):
    """The states a crash can leave (and a few it cannot, but disks can), planted on disk while the
    studio is down: a restarted studio lists only whole entries, says which it skipped, clears
    leftovers once they are surely dead, and keeps working."""
    from core.storage.history import History
    from core.storage.library import VoiceLibrary

    studio = lab["studio"]
    ensure_running(lab)
    studio.kill()
    voices, history = studio.voices_dir, studio.history_dir
    a_voice = next(p for p in sorted(voices.iterdir()) if (p / "voice.json").is_file())
    a_take = next(p for p in sorted(history.iterdir()) if (p / "take.json").is_file())
    an_hour_ago = time.time() - 2 * 3600

    # A save cut off while writing the clip (young: a live save in another process may own it).
    young = voices / ".tmp-0123456789abcdef0123456789abcdef"
    young.mkdir()
    (young / "reference.wav").write_bytes((a_voice / "reference.wav").read_bytes()[:5_000])
    # A save cut off just before its rename, two hours ago: surely dead.
    stale = voices / ".tmp-fedcba9876543210fedcba9876543210"
    shutil.copytree(a_voice, stale)
    # A delete cut off between its rename and the removal.
    trash = voices / ".trash-00112233445566778899aabbccddeeff"
    shutil.copytree(a_voice, trash)
    # An edit cut off before its os.replace: the old voice.json is whole, a temp file lies beside it.
    (a_voice / f".voice.json.{'ab' * 16}.tmp").write_text('{"schema": 1, "id": "half', encoding="utf-8")
    # Not from this studio's writes, but from disks: a folder without its record, a torn record.
    (voices / "no-record").mkdir()
    shutil.copy(a_voice / "reference.wav", voices / "no-record" / "reference.wav")
    torn_voice = voices / "torn-record"
    shutil.copytree(a_voice, torn_voice)
    record = (a_voice / "voice.json").read_bytes()
    (torn_voice / "voice.json").write_bytes(record[: len(record) // 2])
    # The history: a take cut off while encoding, a stale one, a short audio file, a torn record.
    take_tmp = history / ".tmp-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    take_tmp.mkdir()
    (take_tmp / "take.wav").write_bytes(b"RIFF\x00\x00")
    take_stale = history / ".tmp-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    shutil.copytree(a_take, take_stale)
    short_audio = history / "20200101-000000-aaaaaa"
    shutil.copytree(a_take, short_audio)
    copied = json.loads((short_audio / "take.json").read_text(encoding="utf-8"))
    (short_audio / "take.json").write_text(json.dumps(copied | {"id": short_audio.name}), encoding="utf-8")
    audio = next(p for p in short_audio.iterdir() if p.name.startswith("take.") and p.suffix != ".json")
    audio.write_bytes(audio.read_bytes()[: audio.stat().st_size // 2])
    torn_take = history / "20200101-000001-bbbbbb"
    shutil.copytree(a_take, torn_take)
    take_record = (a_take / "take.json").read_bytes()
    (torn_take / "take.json").write_bytes(take_record[: len(take_record) // 3])
    for old in (stale, trash, take_stale):
        os.utime(old, (an_hour_ago, an_hour_ago))

    client = studio.start()
    voices_api = client.predict(api_name="/voices")
    listed = {key.split(":", 1)[1] for key in lab["saved"] if key.startswith("voice:")}
    assert {v["id"] for v in voices_api} == listed
    assert not stale.exists() and not trash.exists(), "dead leftovers are cleared on the first listing"
    # The library says what it skipped (the Library tab shows these lines).
    library = VoiceLibrary(voices)
    assert {v.id for v in library.list()} == listed
    assert len(library.warnings) == 2, library.warnings
    assert any("no-record" in w and "voice.json is missing" in w for w in library.warnings)
    assert any("torn-record" in w and "not valid JSON" in w for w in library.warnings)
    assert young.exists(), "a young staging folder may belong to a live save; it is left alone"
    assert (a_voice / "voice.json").read_bytes() == record
    assert (voices / "no-record").is_dir() and torn_voice.is_dir(), "damaged entries are left for rescue"
    # Writes still work, and the history clears its own dead leftovers on the next save.
    path, info = client.predict(text="Life goes on.", **FAST, api_name="/custom_voice")
    assert not take_stale.exists() and take_tmp.exists()
    assert short_audio.is_dir() and torn_take.is_dir()
    takes = History(history)
    expected = {key.split(":", 1)[1] for key in lab["saved"] if key.startswith("take:")} | {info["take_id"]}
    assert {t.id for t in takes.list()} == expected
    assert len(takes.warnings) == 2, takes.warnings
    assert any(short_audio.name in w and "cut short" in w for w in takes.warnings)
    assert any(torn_take.name in w and "not valid JSON" in w for w in takes.warnings)
    saved = client.predict(
        reference=handle_file(str(lab["clips"]["speech"])), name="After The Leftovers", api_name="/voice_save"
    )
    assert saved["id"] not in {"no-record", "torn-record"}
    # Everything saved before is intact, damaged entries aside.
    for damaged in (voices / "no-record", torn_voice, short_audio, torn_take):
        shutil.rmtree(damaged)
    lab["saved"] = check_studio(studio, lab["saved"])
    assert f"take:{info['take_id']}" in lab["saved"]
