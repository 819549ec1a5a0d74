"""The voice library on real files: saving, listing, damage, concurrency, archives, prompt cache."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio.clip import Audio
from core.audio.io import encode, load_audio
from core.audio.reference import ReferenceOptions
from core.errors import AudioError, LibraryError, VoiceNotFound
from core.storage.library import Voice, VoiceLibrary
from core.storage.library.archive import MAX_IMPORT_MEMBERS
from core.types import ClonePrompt, CloneRequest, Sampling
from tests.conftest import spoken

ID_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?")
PCM_STEP = 1.0 / 32768


def tone(seconds: float = 2.0, freq: float = 180.0, seed: int = 0) -> Audio:
    """A real speech clip (espeak-ng) that passes the speech check; different freq/seed
    give different references."""
    return spoken(seconds, seed=seed + int(freq))


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under root with a hash of its bytes (folders as 'dir')."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".trash-"))]


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "data" / "voices"


@pytest.fixture
def lib(root) -> VoiceLibrary:
    return VoiceLibrary(root)


def save(lib: VoiceLibrary, name: str, **kwargs) -> Voice:
    kwargs.setdefault("kind", "clone")
    kwargs.setdefault("reference", tone(seed=len(str(name))))
    kwargs.setdefault("transcript", f"This is {name} speaking.")
    return lib.save(name=name, **kwargs)


# --- save / list / get ------------------------------------------------------


def test_save_then_list_get_and_a_restart_sees_the_same_voice(lib, root, speech_wav):
    reference = load_audio(speech_wav)
    voice = lib.save(
        name="Narrator Anna",
        kind="clone",
        reference=reference,
        transcript="  The quick brown fox jumps over the lazy dog.  ",
        language="English",
        tags=["warm", "Warm", " audiobook "],
        notes="Recorded in the small booth.",
        source_name="speech.wav",
        consent="Anna agreed in writing on 2024-05-01.",
        trim=ReferenceOptions(start_s=0.0, end_s=4.5, trim_silence=True, normalize=False),
    )
    assert voice.id == "narrator-anna" and voice.folder == root / "narrator-anna"
    assert voice.transcript == "The quick brown fox jumps over the lazy dog."
    assert voice.language == "english" and voice.tags == ("warm", "audiobook")
    assert voice.reference_seconds == pytest.approx(reference.duration, abs=1e-4)

    record = json.loads((voice.folder / "voice.json").read_text(encoding="utf-8"))
    assert record["schema"] == 1 and record["kind"] == "clone" and record["description"] is None
    assert record["trim"] == {
        "start_s": 0.0,
        "end_s": 4.5,
        "trim_silence": True,
        "normalize": False,
        "highpass_hz": None,  # the clean-up options, recorded so the voice's clip can be explained
        "denoise": False,
    }
    assert record["reference_sha256"] == hashlib.sha256(voice.reference_path.read_bytes()).hexdigest()
    assert record["created_at"].endswith("+00:00") and record["created_at"] == record["updated_at"]
    info = sf.info(voice.reference_path)
    assert (info.samplerate, info.channels, info.subtype) == (24_000, 1, "PCM_16")

    assert [v.id for v in lib.list()] == ["narrator-anna"]
    assert lib.get("narrator-anna") == voice
    assert lib.get("  NARRATOR anna ") == voice

    reopened = VoiceLibrary(root)
    again = reopened.get("Narrator Anna")
    assert again == voice and reopened.warnings == []
    audio = reopened.reference_audio(again)
    assert audio.sample_rate == 24_000 and len(audio) == len(reference)
    assert np.max(np.abs(audio.samples - reference.samples)) <= PCM_STEP


def test_get_unknown_voice_suggests_close_names(lib):
    with pytest.raises(VoiceNotFound, match="the voice library is empty"):
        lib.get("Anna")
    save(lib, "Anna")
    save(lib, "Annie")
    save(lib, "Boris")
    with pytest.raises(VoiceNotFound, match=r"No voice named 'Ana' in the library\. Did you mean 'Anna'"):
        lib.get("Ana")
    with pytest.raises(VoiceNotFound, match=r"^No voice named 'Zed' in the library\.$"):
        lib.get("Zed")


def test_invalid_saves_are_refused_clearly_and_change_nothing(lib, root):
    save(lib, "Anna")
    before = tree_digest(root)
    cases = [
        (dict(name=""), LibraryError, "Give the voice a name"),
        (dict(name="   "), LibraryError, "Give the voice a name"),
        (dict(name="x" * 1000), LibraryError, r"1,000 characters long; keep it to 100 or fewer"),
        (dict(name="bad\x00name"), LibraryError, "NUL character"),
        (dict(name="two\nlines"), LibraryError, "control character"),
        (dict(name=42), LibraryError, "must be text"),
        (
            dict(name="ANNA"),
            LibraryError,
            r"^A voice named 'ANNA' already exists; choose another name or rename it first\.$",
        ),
        (dict(name="New", kind="robot"), LibraryError, "'clone' or 'design'"),
        (dict(name="New", language="klingon"), LibraryError, "Language 'klingon' is not supported"),
        (dict(name="New", transcript="a\x00b"), LibraryError, "The transcript contains a control character"),
        (dict(name="New", tags=["ok", "x" * 41]), LibraryError, "A tag is 41 characters long"),
        (dict(name="New", trim={"start_s": "soon"}), LibraryError, "numbers of seconds"),
        (dict(name="New", reference=Audio(tone().samples, 16_000)), AudioError, "resample it to 24 kHz"),
        (dict(name="New", reference=tone(0.2)), AudioError, "only 0.20 s long"),
        (dict(name="New", reference=tone(61.0)), AudioError, "at most 60 s"),
        (dict(name="New", reference=Audio(np.zeros(24_000, np.float32), 24_000)), AudioError, "silent"),
        (dict(name="New", reference=Audio(np.full(24_000, np.nan, np.float32), 24_000)), AudioError, "NaN"),
        (dict(name="New", reference=b"RIFF"), AudioError, "load_audio"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            save(lib, **{"name": kwargs.pop("name"), **kwargs})
    assert tree_digest(root) == before
    assert [v.name for v in lib.list()] == ["Anna"]


def test_hostile_and_unusual_names_are_fine_as_names_but_never_escape_the_root(tmp_path, lib, root):
    names = [
        "../evil",
        "a/b\\c",
        "/etc/passwd",
        "..",
        ".",
        "😀🎙️",
        "名前",
        "CON",
        "nul",
        "-",
        "x" * 100,
        "Ünïcödé Voice",
        "..\\..\\windows",
        "👩‍👩‍👧 family",
    ]
    voices = [save(lib, name) for name in names]
    assert [v.name for v in voices] == names
    assert len({v.id for v in voices}) == len(names)
    for voice in voices:
        assert ID_RE.fullmatch(voice.id) and len(voice.id) <= 48
        assert voice.folder.parent == root and voice.folder.is_dir()
        assert lib.get(voice.name).id == voice.id
    assert {v.id for v in voices} >= {"evil", "etc-passwd", "voice", "con-voice", "nul-voice", "unicode-voice"}
    # Nothing at all was written outside the library root.
    assert all(root in p.parents for p in tmp_path.rglob("*") if p not in (tmp_path / "data", root))
    assert {p.name for p in root.iterdir()} == {v.id for v in voices} | {".lock"}


def test_a_stray_file_with_an_id_as_name_is_not_overwritten(lib, root):
    (root / "anna").write_text("not a voice")
    voice = save(lib, "Anna")
    assert voice.id == "anna-2" and (root / "anna").read_text() == "not a voice"


# --- search, filters and edits ---------------------------------------------------


def test_search_and_filters(lib):
    save(lib, "Anna", language="english", tags=["warm", "narrator"], notes="Great for audiobooks")
    save(lib, "boris", language="german", tags=["deep"], transcript="Guten Morgen")
    save(
        lib,
        "Clara",
        kind="design",
        language="english",
        description="A bright, cheerful young voice",
        transcript="Hello!",
        tags=["Bright"],
    )
    names = lambda voices: [v.name for v in voices]  # noqa: E731
    assert names(lib.list()) == ["Anna", "boris", "Clara"]  # sorted case-insensitively
    assert names(lib.list(kind="design")) == ["Clara"]
    assert names(lib.list(kind="CLONE")) == ["Anna", "boris"]
    assert names(lib.list(language="English")) == ["Anna", "Clara"]
    assert names(lib.list(tag="bright")) == ["Clara"]
    assert names(lib.list(query="AUDIOBOOK")) == ["Anna"]  # notes
    assert names(lib.list(query="morgen")) == ["boris"]  # transcript
    assert names(lib.list(query="cheerful young")) == ["Clara"]  # description, every word
    assert names(lib.list(query="narrator")) == ["Anna"]  # tags
    assert names(lib.list(query="cla")) == ["Clara"]  # name
    assert names(lib.list(query="cheerful anna")) == []
    assert names(lib.list(query="hello", kind="clone")) == []
    with pytest.raises(LibraryError, match="'clone' or 'design'"):
        lib.list(kind="robot")


def test_rename_update_duplicate_delete(lib, root):
    anna = save(lib, "Anna", tags=["warm"])
    save(lib, "Boris")
    prompt_dir = anna.folder / "prompts"

    renamed = lib.rename("anna", "Anna Smith")
    assert renamed.id == "anna" and renamed.name == "Anna Smith" and lib.get("anna smith") == renamed
    assert lib.rename("Anna Smith", "ANNA SMITH").name == "ANNA SMITH"  # a case change is allowed
    with pytest.raises(LibraryError, match="A voice named 'boris' already exists"):
        lib.rename("anna", "boris")
    with pytest.raises(LibraryError, match="NUL"):
        lib.rename("anna", "a\x00")
    with pytest.raises(VoiceNotFound):
        lib.rename("nobody", "X")

    updated = lib.update(
        "anna",
        tags="calm, slow",
        notes="Use for bedtime stories.",
        consent="CC-BY 4.0",
        language="french",
        description="Soft and calm",
    )
    assert updated.tags == ("calm", "slow") and updated.language == "french" and updated.consent == "CC-BY 4.0"
    assert updated.transcript == anna.transcript and updated.description == "Soft and calm"
    assert VoiceLibrary(root).get("anna") == updated
    assert lib.update("anna", transcript="").transcript is None  # cleared: x-vector-only from now on
    assert lib.update("anna", description="").description is None
    unchanged = lib.get("anna")
    assert lib.update("anna", notes=unchanged.notes).updated_at == unchanged.updated_at
    with pytest.raises(LibraryError, match="together with the new reference"):
        lib.update("anna", trim={"start_s": 1.0})

    new_clip = tone(3.0, freq=250.0)
    prompt_dir.mkdir()
    (prompt_dir / "demo-0.6B-Base.safetensors").write_bytes(b"stale")
    replaced = lib.update("anna", reference=new_clip, trim={"start_s": 2.0, "end_s": 5.0})
    assert replaced.reference_seconds == pytest.approx(3.0)
    assert replaced.reference_sha256 == hashlib.sha256(replaced.reference_path.read_bytes()).hexdigest()
    assert replaced.trim == ReferenceOptions(start_s=2.0, end_s=5.0)
    assert not prompt_dir.exists(), "a new reference must drop the stale prompts"

    copy = lib.duplicate("anna")
    copy2 = lib.duplicate("anna")
    named = lib.duplicate("anna", "Anna for ads")
    assert [copy.name, copy2.name, named.name] == ["ANNA SMITH (copy)", "ANNA SMITH (copy 2)", "Anna for ads"]
    assert len({copy.id, copy2.id, named.id, "anna"}) == 4
    assert copy.reference_sha256 == replaced.reference_sha256 and copy.tags == replaced.tags
    assert copy.reference_path.read_bytes() == replaced.reference_path.read_bytes()
    with pytest.raises(LibraryError, match="already exists"):
        lib.duplicate("anna", "boris")

    lib.delete("ANNA SMITH (copy)")
    assert not copy.folder.exists() and leftovers(root) == []
    with pytest.raises(VoiceNotFound):
        lib.get(copy.id)
    assert [v.name for v in lib.list()] == ["Anna for ads", "ANNA SMITH", "ANNA SMITH (copy 2)", "Boris"]


def test_long_names_still_get_copy_suffixes_within_the_limit(lib):
    long = save(lib, "n" * 100)
    assert len(lib.duplicate(long).name) == 100
    assert lib.duplicate(long).name.endswith(" (copy 2)")


# --- damage ------------------------------------------------------------------------


def test_damaged_entries_are_skipped_with_warnings_and_never_stop_listing(lib, root):
    good = [save(lib, "Good one"), save(lib, "Good two")]
    template = json.loads((good[0].folder / "voice.json").read_text())

    def plant(folder_name: str, record=None, raw: bytes | None = None, wav: bool = True) -> None:
        folder = root / folder_name
        folder.mkdir()
        if raw is not None:
            (folder / "voice.json").write_bytes(raw)
        elif record is not None:
            (folder / "voice.json").write_text(json.dumps({**template, "id": folder_name, **record}))
        if wav:
            (folder / "reference.wav").write_bytes(good[0].reference_path.read_bytes())

    plant("corrupt", raw=b"{ this is not json")
    plant("truncated", raw=json.dumps(template).encode()[:40])
    plant("newer", {"schema": 2})
    plant("wrong-types", {"tags": "warm"})
    plant("no-name", {"name": "   "})
    plant("no-json")
    plant("no-wav", {"name": "No wav"}, wav=False)
    plant("other-id", {"id": "elsewhere"})
    plant("Not A Slug", {})
    (root / ".tmp-half-written").mkdir()
    (root / ".tmp-half-written" / "reference.wav").write_bytes(b"half")
    (root / "README.txt").write_text("a file in the root is ignored")
    (root / "linked").symlink_to(good[0].folder, target_is_directory=True)

    reopened = VoiceLibrary(root)
    assert [v.name for v in reopened.list()] == ["Good one", "Good two"]
    text = "\n".join(reopened.warnings)
    assert len(reopened.warnings) == 10
    assert "'linked' in the voice library: it is a link, which the library does not follow" in text
    assert "'corrupt': its voice.json is damaged (not valid JSON" in text
    assert "'truncated': its voice.json is damaged" in text
    assert "'newer': it was made by a newer version of Qwen TTS Studio (voice format 2)" in text
    assert "'wrong-types': its voice.json has an invalid 'tags' (expected a list of text)" in text
    assert "'no-name': its voice.json has an invalid 'name'" in text
    assert "'no-json': its voice.json is missing" in text
    assert "'no-wav': its reference.wav is missing" in text
    assert "'other-id': its voice.json names the id 'elsewhere'" in text
    assert "'Not A Slug'" in text and "half-written" not in text
    # The library keeps working around the damage.
    assert reopened.get("Good two") == good[1]
    assert save(reopened, "Third").id == "third"
    with pytest.raises(VoiceNotFound):
        reopened.get("No wav")


def test_old_leftover_temp_folders_are_cleaned_but_young_ones_kept(lib, root):
    save(lib, "Anna")
    old, young, trash = root / ".tmp-old", root / ".tmp-young", root / ".trash-old"
    for folder in (old, young, trash):
        folder.mkdir()
        (folder / "reference.wav").write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for folder in (old, trash):
        os.utime(folder, (two_hours_ago, two_hours_ago))
    assert [v.name for v in lib.list()] == ["Anna"] and lib.warnings == []
    assert not old.exists() and not trash.exists() and young.exists()


def test_listing_picks_up_edits_made_by_another_library_instance(lib, root):
    save(lib, "Anna")
    other = VoiceLibrary(root)
    assert other.list()[0].notes == ""
    lib.update("anna", notes="edited elsewhere")
    assert other.list()[0].notes == "edited elsewhere"
    lib.delete("anna")
    assert other.list() == []


# --- concurrency ---------------------------------------------------------------------


def _run_threads(count: int, work):
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # collected and asserted on below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_eight_threads_with_distinct_names_all_save_with_distinct_ids(lib, root):
    # Every name slugs to "anna", so the ids are allocated under contention too.
    names = [f"Anna{'!' * i}" for i in range(8)]
    results = _run_threads(8, lambda i: lib.save(name=names[i], kind="clone", reference=tone(seed=i), transcript="hi"))
    assert all(isinstance(r, Voice) for r in results), results
    assert sorted(r.id for r in results) == sorted(["anna", *(f"anna-{n}" for n in range(2, 9))])
    assert sorted(v.name for v in VoiceLibrary(root).list()) == sorted(names)
    assert leftovers(root) == []


def test_eight_threads_with_the_same_name_exactly_one_wins(lib, root):
    results = _run_threads(8, lambda i: lib.save(name="Same", kind="clone", reference=tone(seed=i), transcript=None))
    wins = [r for r in results if isinstance(r, Voice)]
    losses = [r for r in results if isinstance(r, LibraryError)]
    assert len(wins) == 1 and len(losses) == 7, results
    assert all("A voice named 'Same' already exists" in str(e) for e in losses)
    assert [v.id for v in lib.list()] == [wins[0].id] and leftovers(root) == []


def _save_in_process(root: str, names: list[str], barrier, queue) -> None:
    """Runs in a spawned process: save each name right after both processes reach the barrier."""
    library = VoiceLibrary(Path(root))
    for name in names:
        barrier.wait(timeout=120)
        try:
            voice = library.save(name=name, kind="clone", reference=tone(seed=os.getpid() % 100), transcript=None)
            queue.put((name, "ok", voice.id))
        except LibraryError as exc:
            queue.put((name, "error", str(exc)))


def test_two_processes_saving_at_once_do_not_clobber_each_other(lib, root):
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    processes = [
        ctx.Process(target=_save_in_process, args=(str(root), [first, "Shared"], barrier, queue))
        for first in ("Twin", "twin!")  # distinct names, same slug
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=300) for _ in range(4)]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    own = sorted(r[2] for r in results if r[0] != "Shared")
    assert own == ["twin", "twin-2"]
    shared = sorted(r[1] for r in results if r[0] == "Shared")
    assert shared == ["error", "ok"]
    assert any("already exists" in r[2] for r in results if r[1] == "error")
    assert sorted(v.name for v in lib.list()) == ["Shared", "Twin", "twin!"] and leftovers(root) == []


# --- export / import -----------------------------------------------------------------


def fake_prompt(key: str = "demo-0.6B-Base", seed: int = 0, x_vector_only: bool = False) -> ClonePrompt:
    generator = torch.Generator().manual_seed(seed)
    return ClonePrompt(
        checkpoint_key=key,
        speaker_embedding=torch.randn(1024, generator=generator),
        ref_code=None if x_vector_only else torch.randint(0, 2048, (40, 16), generator=generator),
        ref_text=None if x_vector_only else "reference text",
        x_vector_only=x_vector_only,
    )


def test_export_import_round_trip(lib, tmp_path):
    anna = save(
        lib,
        "Anna ✨",
        language="english",
        tags=["warm"],
        notes="notes",
        consent="mine",
        trim={"start_s": 1.0, "end_s": None, "trim_silence": True, "normalize": True},
    )
    clara = save(lib, "Clara", kind="design", description="Bright voice", transcript=None)
    lib.store_prompt(anna, fake_prompt())

    archive = lib.export_zip(["Anna ✨", "clara", "anna"], tmp_path / "voices.zip")
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == [
            "anna/reference.wav",
            "anna/voice.json",
            "clara/reference.wav",
            "clara/voice.json",
        ]
    assert lib.export_zip(["clara"], tmp_path).parent == tmp_path  # a folder gets a dated file name
    with pytest.raises(LibraryError, match="outside the voice library"):
        lib.export_zip(["clara"], lib.root / "x.zip")
    with pytest.raises(LibraryError, match="at least one voice"):
        lib.export_zip([], tmp_path / "none.zip")

    other = VoiceLibrary(tmp_path / "other" / "voices")
    imported = other.import_zip(archive)
    assert [v.id for v in imported] == ["anna", "clara"]
    for original, copy in zip((anna, clara), imported):
        assert copy.as_dict() == original.as_dict()  # id, name, transcript, dates, hash: all kept
        assert copy.reference_path.read_bytes() == original.reference_path.read_bytes()
        assert np.array_equal(other.reference_audio(copy).samples, lib.reference_audio(original).samples)
    assert not (other.root / "anna" / "prompts").exists()

    again = other.import_zip(archive)
    third = other.import_zip(archive)
    assert [v.name for v in again] == ["Anna ✨ (imported)", "Clara (imported)"]
    assert [v.name for v in third] == ["Anna ✨ (imported 2)", "Clara (imported 2)"]
    assert len({v.id for v in [*imported, *again, *third]}) == 6


def _zip(path: Path, members: dict[str, bytes], **kwargs) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate-name case
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, **kwargs) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    return path


def _voice_files(voice_id: str = "vox", seconds: float = 2.0, **record) -> dict[str, bytes]:
    now = "2024-01-01T00:00:00+00:00"
    data = {
        "schema": 1,
        "id": voice_id,
        "name": voice_id.title(),
        "kind": "clone",
        "language": "auto",
        "transcript": "hi",
        "description": None,
        "tags": [],
        "notes": "",
        "source_name": None,
        "consent": "",
        "trim": None,
        "reference_sha256": "0" * 64,
        "reference_seconds": seconds,
        "created_at": now,
        "updated_at": now,
        **record,
    }
    return {
        f"{voice_id}/voice.json": json.dumps(data).encode(),
        f"{voice_id}/reference.wav": encode(tone(seconds), "wav"),
    }


def _bomb(path: Path, size_mb: int) -> Path:
    """size_mb of zeros streamed into one member (the zip stays tiny and is built fast)."""
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in _voice_files("vox").items():
            if name.endswith("voice.json"):
                zf.writestr(name, data)
        info = zipfile.ZipInfo("vox/reference.wav")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            for _ in range(size_mb):
                member.write(block)
    return path


def _lying_size(path: Path) -> Path:
    """A 10 MB member whose central directory claims it is 1,000 bytes."""
    _bomb(path, 10)
    raw = bytearray(path.read_bytes())
    entry = raw.rfind(b"PK\x01\x02")  # the reference.wav entry is the last one
    assert raw[entry + 46 : entry + 46 + 17] == b"vox/reference.wav"
    assert raw[entry + 30 : entry + 32] == b"\x00\x00", "no zip64 extra field carries the real size"
    raw[entry + 24 : entry + 28] = (1000).to_bytes(4, "little")  # the uncompressed-size field
    path.write_bytes(bytes(raw))
    return path


def _with_symlink(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _voice_files("vox").items():
            zf.writestr(name, data)
        link = zipfile.ZipInfo("vox2/reference.wav")
        link.external_attr = 0o120777 << 16  # S_IFLNK
        zf.writestr(link, "/etc/passwd")
    return path


HOSTILE = {
    "zip-slip": (lambda p: _zip(p, {"../evil/voice.json": b"{}", **_voice_files()}), "climbs out of its folder"),
    "zip-slip-nested": (lambda p: _zip(p, {"vox/../../evil": b"x"}), "climbs out of its folder"),
    "absolute-path": (lambda p: _zip(p, {**_voice_files(), "/etc/cron.d/evil": b"x"}), "absolute path"),
    "drive-path": (lambda p: _zip(p, {"C:/evil/voice.json": b"x"}), "absolute path"),
    "backslashes": (lambda p: _zip(p, {"vox\\voice.json": b"x"}), "backslashes"),
    "symlink": (_with_symlink, "symbolic link"),
    "zip-bomb": (lambda p: _bomb(p, 200), r"unpacks to 209,715,200 bytes"),
    "compression-ratio": (lambda p: _bomb(p, 10), "looks like a zip bomb"),
    "lying-declared-size": (_lying_size, "is damaged and could not be unpacked"),
    "non-audio-reference": (
        lambda p: _zip(p, {**_voice_files(), "vox/reference.wav": b"meeting notes " * 50}),
        "reference.wav that is not WAV audio",
    ),
    "too-short-reference": (
        lambda p: _zip(p, _voice_files(seconds=0.2)),
        "unusable reference.wav: The reference is only 0.20 s",
    ),
    "truncated-zip": (
        lambda p: p.write_bytes(_zip(p, _voice_files()).read_bytes()[:300]) and p,
        "not a valid zip archive, or it is damaged or incomplete",
    ),
    "not-a-zip": (lambda p: p.write_text("hello") and p, "not a valid zip archive"),
    "newer-schema": (lambda p: _zip(p, _voice_files(schema=7)), "made by a newer version of Qwen TTS Studio"),
    "bad-schema": (lambda p: _zip(p, _voice_files(schema="one")), "no valid schema version"),
    "bad-json": (lambda p: _zip(p, {**_voice_files(), "vox/voice.json": b"{nope"}), "damaged voice.json"),
    "nul-in-name": (lambda p: _zip(p, _voice_files(name="a\x00b")), "NUL character"),
    "too-many-members": (
        lambda p: _zip(p, {f"v{i}/voice.json": b"" for i in range(MAX_IMPORT_MEMBERS + 1)}),
        "holds 6,001 files",
    ),
    "unexpected-member": (lambda p: _zip(p, {**_voice_files(), "vox/notes.txt": b"x"}), "not part of a voice export"),
    "missing-reference": (
        lambda p: _zip(p, {"vox/voice.json": _voice_files()["vox/voice.json"]}),
        "has no reference.wav",
    ),
    "duplicate-member": (lambda p: _zip(p, {**_voice_files(), **{"vox/voice.json": b"{}"}}) and _dup(p), "twice"),
    "empty-zip": (lambda p: _zip(p, {}), "holds no voices"),
    "good-then-bad": (
        lambda p: _zip(p, {**_voice_files("aaa"), **_voice_files("zzz"), "zzz/reference.wav": b"not audio"}),
        "'zzz'.*not WAV audio",
    ),
}


def _dup(path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("vox/voice.json", b"{}")
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_imports_are_refused_and_leave_the_library_untouched(case, lib, root, tmp_path):
    save(lib, "Existing")
    lib.store_prompt("existing", fake_prompt())
    before = tree_digest(root)
    build, message = HOSTILE[case]
    archive = build(tmp_path / f"{case}.zip")
    with pytest.raises(LibraryError, match=message):
        lib.import_zip(archive)
    assert tree_digest(root) == before
    assert not (tmp_path / "evil").exists() and not Path("/etc/cron.d/evil").exists()


def test_a_bad_last_voice_stops_the_import_before_anything_is_written(lib, tmp_path, monkeypatch):
    import core.storage.library.store as store_module

    build, _ = HOSTILE["good-then-bad"]
    archive = build(tmp_path / "mixed.zip")
    writes = []
    monkeypatch.setattr(store_module, "write_file", lambda *args: writes.append(args))
    with pytest.raises(LibraryError, match="'zzz'"):
        lib.import_zip(archive)
    assert writes == [] and list(lib.root.iterdir()) == []


def test_an_import_that_fails_midway_removes_the_voices_it_installed(lib, root, tmp_path, monkeypatch):
    save(lib, "Existing")
    source = VoiceLibrary(tmp_path / "source")
    for name in ("One", "Two", "Three"):
        save(source, name)
    archive = source.export_zip(["one", "two", "three"], tmp_path / "three.zip")
    before = tree_digest(root)

    real_install = VoiceLibrary._install
    calls = []

    def failing_install(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_install(self, *args, **kwargs)

    monkeypatch.setattr(VoiceLibrary, "_install", failing_install)
    with pytest.raises(LibraryError, match=r"Could not import 'three.zip' \(No space left on device\)"):
        lib.import_zip(archive)
    assert tree_digest(root) == before and leftovers(root) == []
    monkeypatch.undo()
    assert [v.name for v in lib.import_zip(archive)] == ["One", "Two", "Three"]


# --- prompt cache (a stand-in encoder) ---------------------------------------------------


class CountingEncoder:
    def __init__(self, key: str = "demo-0.6B-Base"):
        self.key, self.calls = key, []

    def __call__(self, audio: Audio, transcript: str | None) -> ClonePrompt:
        self.calls.append((audio, transcript))
        return fake_prompt(self.key, seed=len(self.calls), x_vector_only=transcript is None)


def test_prompt_cache_hits_misses_and_invalidation(lib):
    voice = save(lib, "Anna")
    encoder = CountingEncoder()
    assert lib.cached_prompt(voice, "demo-0.6B-Base") is None

    first, cached = lib.prompt_for(voice, "demo-0.6B-Base", encoder)
    assert not cached and len(encoder.calls) == 1
    audio, transcript = encoder.calls[0]
    assert transcript == "This is Anna speaking."
    assert np.array_equal(audio.samples, lib.reference_audio(voice).samples)  # encoded from the stored clip

    second, cached = lib.prompt_for("anna", "demo-0.6B-Base", encoder)
    assert cached and len(encoder.calls) == 1
    assert torch.equal(second.speaker_embedding, first.speaker_embedding)
    assert torch.equal(second.ref_code, first.ref_code)
    assert (second.ref_text, second.x_vector_only, second.checkpoint_key) == ("reference text", False, "demo-0.6B-Base")

    # A new transcript makes the prompt stale (and deletes it).
    lib.update("anna", transcript="Something else entirely.")
    assert not (voice.folder / "prompts").exists()
    assert lib.cached_prompt(voice, "demo-0.6B-Base") is None
    _, cached = lib.prompt_for(voice, "demo-0.6B-Base", encoder)
    assert not cached and encoder.calls[-1][1] == "Something else entirely."

    # A new reference does too; and so does one replaced behind the library's back.
    lib.update("anna", reference=tone(3.0, freq=300.0))
    assert lib.prompt_for(voice, "demo-0.6B-Base", encoder)[1] is False
    assert lib.prompt_for(voice, "demo-0.6B-Base", encoder)[1] is True
    voice.reference_path.write_bytes(encode(tone(2.5, freq=90.0), "wav"))
    assert lib.cached_prompt(voice, "demo-0.6B-Base") is None
    assert len(encoder.calls) == 3


def test_prompts_are_kept_per_checkpoint_and_x_vector_prompts_round_trip(lib):
    voice = save(lib, "Anna", transcript=None)
    small, large = CountingEncoder("demo-0.6B-Base"), CountingEncoder("demo-1.7B-Base")
    lib.prompt_for(voice, "demo-0.6B-Base", small)
    lib.prompt_for(voice, "demo-1.7B-Base", large)
    files = sorted(p.name for p in (voice.folder / "prompts").iterdir())
    assert files == ["demo-0.6B-Base.safetensors", "demo-1.7B-Base.safetensors"]
    a, hit_a = lib.prompt_for(voice, "demo-0.6B-Base", small)
    b, hit_b = lib.prompt_for(voice, "demo-1.7B-Base", large)
    assert hit_a and hit_b and len(small.calls) == len(large.calls) == 1
    assert a.checkpoint_key == "demo-0.6B-Base" and b.checkpoint_key == "demo-1.7B-Base"
    assert a.ref_code is None and a.x_vector_only and a.ref_text is None
    with pytest.raises(LibraryError, match="made with demo-1.7B-Base, not demo-0.6B-Base"):
        lib.prompt_for(voice, "demo-0.6B-Base-x", large)  # a miss, then the wrong encoder
    with pytest.raises(LibraryError, match="not a valid model key"):
        lib.prompt_for(voice, "../../evil", small)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong-metadata"])
def test_a_damaged_prompt_file_is_encoded_again_not_fatal(lib, damage):
    voice = save(lib, "Anna")
    encoder = CountingEncoder()
    lib.prompt_for(voice, "demo-0.6B-Base", encoder)
    path = voice.folder / "prompts" / "demo-0.6B-Base.safetensors"
    raw = path.read_bytes()
    path.write_bytes(
        {
            "garbage": b"\x00\xff" * 100,
            "truncated": raw[: len(raw) // 2],
            "empty": b"",
            "wrong-metadata": raw.replace(b'"x_vector_only":"false"', b'"x_vector_only":"maybe"'),
        }[damage]
    )
    prompt, cached = lib.prompt_for(voice, "demo-0.6B-Base", encoder)
    assert not cached and len(encoder.calls) == 2 and isinstance(prompt, ClonePrompt)
    assert lib.prompt_for(voice, "demo-0.6B-Base", encoder)[1] is True  # the rewrite is good again


def test_storing_a_prompt_for_a_deleted_voice_does_not_resurrect_it(lib, root, tmp_path):
    voice = save(lib, "Anna")
    elsewhere = VoiceLibrary(tmp_path / "elsewhere")
    with pytest.raises(VoiceNotFound):  # a Voice of another library never steers where files go
        elsewhere.store_prompt(voice, fake_prompt())
    assert not (voice.folder / "prompts").exists()
    lib.delete(voice)
    with pytest.raises(VoiceNotFound):
        lib.store_prompt(voice, fake_prompt())
    assert not voice.folder.exists() and lib.list() == [] and lib.warnings == []


# --- prompt cache with the real (tiny) model -------------------------------------------------


def test_real_model_prompt_cache_skips_the_speech_tokenizer_and_gives_identical_audio(demo_context, lib, speech_wav):
    synthesis = demo_context.synthesis
    voice = lib.save(
        name="Speaker",
        kind="clone",
        reference=load_audio(speech_wav),
        transcript="The quick brown fox jumps over the lazy dog.",
    )
    small = synthesis.checkpoint_for("base", "0.6B")
    loaded = demo_context.models.get(small)
    tokenizer = loaded.model.model.speech_tokenizer
    real_encode, calls = tokenizer.encode, []

    def counting_encode(*args, **kwargs):
        calls.append(1)
        return real_encode(*args, **kwargs)

    tokenizer.encode = counting_encode
    encode_small = lambda audio, text: synthesis.create_clone_prompt(audio, text, size="0.6B")  # noqa: E731

    fresh, cached = lib.prompt_for(voice, small.key, encode_small)
    assert not cached and len(calls) == 1
    again, cached = lib.prompt_for(voice, small.key, encode_small)
    assert cached and len(calls) == 1, "a cached prompt must not run the speech tokenizer"
    assert torch.equal(again.speaker_embedding, fresh.speaker_embedding)
    assert torch.equal(again.ref_code, fresh.ref_code) and again.ref_text == fresh.ref_text

    def request(prompt):
        return CloneRequest(
            text="Hello from the library.", prompt=prompt, size="0.6B", sampling=Sampling(seed=1, max_new_tokens=8)
        )

    from_fresh = synthesis.clone(request(fresh)).audio.samples
    from_cache = synthesis.clone(request(again)).audio.samples
    assert from_fresh.size > 0 and np.array_equal(from_fresh, from_cache)
    assert len(calls) == 1

    lib.update(voice, transcript="A different transcript.")
    _, cached = lib.prompt_for(voice, small.key, encode_small)
    assert not cached and len(calls) == 2

    large = synthesis.checkpoint_for("base", "1.7B")
    big, cached = lib.prompt_for(
        voice, large.key, lambda audio, text: synthesis.create_clone_prompt(audio, text, size="1.7B")
    )
    assert not cached and big.checkpoint_key == large.key != small.key
    assert sorted(p.name for p in (voice.folder / "prompts").iterdir()) == sorted(
        [f"{small.key}.safetensors", f"{large.key}.safetensors"]
    )
    assert lib.prompt_for(voice, small.key, encode_small)[1] is True


def test_an_import_killed_half_way_is_rolled_back_on_the_next_listing(tmp_path, speech_wav):
    """A real crash (os._exit in a child process) after 2 of 5 voices were installed:
    the next listing shows none of the import and everything saved before intact."""
    import subprocess
    import sys
    import textwrap

    from core.audio.io import load_audio as _load

    root = tmp_path / "voices"
    library = VoiceLibrary(root)
    kept = library.save(name="Kept", kind="clone", reference=_load(speech_wav), transcript="Before.")
    kept_bytes = (kept.folder / "voice.json").read_bytes(), kept.reference_path.read_bytes()
    source = VoiceLibrary(tmp_path / "source")
    for i in range(5):
        source.save(name=f"Imported {i}", kind="clone", reference=_load(speech_wav), transcript=f"Line {i}.")
    archive = source.export_zip([v.id for v in source.list()], tmp_path / "all.zip")

    child = textwrap.dedent(f"""
        import os
        from core.storage.library import VoiceLibrary
        library = VoiceLibrary({str(root)!r})
        real = library._install
        count = []
        def dying_install(*args, **kwargs):
            if len(count) == 2:
                os._exit(9)  # no cleanup, like SIGKILL
            count.append(1)
            return real(*args, **kwargs)
        library._install = dying_install
        library.import_zip({str(archive)!r})
    """)
    result = subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 9
    assert len([p for p in root.iterdir() if not p.name.startswith(".")]) == 3  # 2 installed + Kept
    after = VoiceLibrary(root)
    assert [v.name for v in after.list()] == ["Kept"]
    assert not list(root.glob(".import-*.json"))
    assert ((kept.folder / "voice.json").read_bytes(), kept.reference_path.read_bytes()) == kept_bytes
    imported = after.import_zip(archive)  # and a clean retry imports everything
    assert len(imported) == 5
    assert not [p for v in imported for p in v.folder.iterdir() if p.name.startswith(".import-")]


def test_trim_settings_with_and_without_the_cleanup_options():
    from core.storage.library.records import clean_trim

    # A voice saved before the clean-up options existed reads as "no high-pass, no noise reduction".
    old = clean_trim({"start_s": 1.0, "end_s": None, "trim_silence": True, "normalize": True})
    assert old is not None and old.highpass_hz is None and old.denoise is False
    new = clean_trim({"start_s": None, "end_s": 3.0, "highpass_hz": 80, "denoise": True})
    assert new == ReferenceOptions(end_s=3.0, highpass_hz=80.0, denoise=True)
    assert clean_trim(new.as_dict()) == new
    with pytest.raises(LibraryError, match="highpass_hz"):
        clean_trim({"highpass_hz": "loud"})
    with pytest.raises(LibraryError, match="denoise must be true or false"):
        clean_trim({"denoise": "yes"})


def test_a_take_the_studio_made_skips_the_speech_check_an_upload_gets(lib):
    """Noise (what the demo models make) is refused as an uploaded clone reference, but saved when the
    caller read it from History as the studio's own take (``model_output``), like a design voice."""
    rng = np.random.default_rng(7)
    noise = Audio((rng.standard_normal(24_000 * 2) * 0.2).astype(np.float32), 24_000)
    with pytest.raises(AudioError, match="speech"):
        lib.save(name="Upload", kind="clone", reference=noise, transcript="Hello.")
    assert [v.name for v in lib.list()] == []
    voice = lib.save(
        name="From a take", kind="clone", reference=noise, transcript="Hello.", source_name="take 1", model_output=True
    )
    assert voice.kind == "clone" and voice.source_name == "take 1" and lib.get("From a take").reference_seconds == 2.0


def test_export_all_then_import_brings_back_the_studios_own_takes_without_speech(tmp_path, lib, root):
    """Issue 23: a take saved as a voice (noise with the demo models), a design voice and a voice
    saved before the record kept the mark all come back from the studio's own export; a noise
    clip the export does not mark as studio-made is still refused."""
    rng = np.random.default_rng(11)

    def noise(seconds: float) -> Audio:
        return Audio((rng.standard_normal(int(24_000 * seconds)) * 0.2).astype(np.float32), 24_000)

    take = lib.save(name="From a take", kind="clone", reference=noise(2), transcript="Hi.", model_output=True)
    design = lib.save(name="Designed", kind="design", reference=noise(2), transcript=None, description="Warm")
    legacy = lib.save(name="Old take", kind="clone", reference=noise(2.5), transcript="Old.", model_output=True)
    upload = save(lib, "Spoken")
    assert take.model_output is True and upload.model_output is False
    assert lib.get("From a take").model_output is True  # read back from voice.json
    # A record written before the mark existed: no "model_output" key at all.
    record = json.loads((legacy.folder / "voice.json").read_text())
    del record["model_output"]
    (legacy.folder / "voice.json").write_text(json.dumps(record))
    assert lib.get("Old take").model_output is None

    archive = lib.export_zip([v.name for v in lib.list()], tmp_path / "all.zip")
    with zipfile.ZipFile(archive) as z:
        marks = {n.split("/")[0]: json.loads(z.read(n))["model_output"] for n in z.namelist() if n.endswith(".json")}
    assert marks == {take.id: True, design.id: False, legacy.id: True, upload.id: False}  # design: by kind

    other = VoiceLibrary(tmp_path / "other")
    imported = {v.name: v for v in other.import_zip(archive)}
    assert sorted(imported) == ["Designed", "From a take", "Old take", "Spoken"]
    assert imported["Old take"].model_output is True and imported["Spoken"].model_output is False
    # ... and the imported library exports and imports again (the round trip holds).
    again = other.export_zip(list(imported), tmp_path / "again.zip")
    assert len(VoiceLibrary(tmp_path / "third").import_zip(again)) == 4

    # A noise clip whose record does not claim to be the studio's own output is checked for speech.
    with zipfile.ZipFile(archive) as z, zipfile.ZipFile(tmp_path / "claimless.zip", "w") as out:
        data = json.loads(z.read(f"{take.id}/voice.json"))
        data["model_output"] = False
        out.writestr(f"{take.id}/voice.json", json.dumps(data))
        out.writestr(f"{take.id}/reference.wav", z.read(f"{take.id}/reference.wav"))
    with pytest.raises(LibraryError, match="speech"):
        VoiceLibrary(tmp_path / "fourth").import_zip(tmp_path / "claimless.zip")
