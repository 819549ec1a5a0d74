"""A battery of hostile and broken inputs against a real studio server.

Every case goes through ``gradio_client`` (or raw HTTP where the client would
clean the input up first) to a real server on the demo models, and asserts:

1. a clear refusal (``AppError`` whose message is a sentence for a person, not
   a traceback or a bare exception type), or success where success is right
   (emoji, right-to-left text and control characters are text to speak; an
   8-channel 192 kHz file is mixed and resampled; a clipped clip works but warns);
2. the server still answers the next request (``/languages``);
3. for refusals, the voice library and the take history are byte-for-byte
   unchanged (every file's path and SHA-256 under both folders).

Where the UI takes another path than the API (the Clone tab's live preview, its
Save button, the streaming Generate buttons), the handlers are called directly too.
"""

from __future__ import annotations

import inspect
import json
import re
import struct
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import free_port, make_demo_settings
from tests.quality.conftest import (
    assert_human_message,
    copy_demo_models,
    tone,
    tree_snapshot,
    truncated_wav,
    voice_record,
    voice_zip,
    wav_bytes,
    write_wav,
)

FAST = {"seed": 3, "max_seconds": 1}
EXISTING_VOICE = "Existing Voice"
OTHER_VOICE = "Other Voice"


# --- the server and the test data ------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_checkpoints, speech_wav):
    """A real studio on a fresh data dir, without the per-client rate limit, with one saved voice."""
    from studio.server import serve

    data_dir = tmp_path_factory.mktemp("quality-data") / "data"
    data_dir.mkdir()
    copy_demo_models(demo_checkpoints, data_dir)
    settings = make_demo_settings(
        data_dir,
        demo_checkpoints,
        port=free_port(),
        rate_limit_per_minute=0,
        max_resident=3,  # no reloads between the modes the battery alternates
    )
    app, ctx = serve(settings, block=False)
    client = Client(f"http://127.0.0.1:{settings.port}/", verbose=False)
    for name in (EXISTING_VOICE, OTHER_VOICE):
        client.predict(
            reference=handle_file(str(speech_wav)), transcript="The quick brown fox.", name=name, api_name="/voice_save"
        )
    try:
        yield {
            "url": f"http://127.0.0.1:{settings.port}/",
            "app": app,
            "ctx": ctx,
            "settings": settings,
            "client": client,
        }
    finally:
        app.close()


@pytest.fixture(scope="module")
def client(server) -> Client:
    return server["client"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, speech_wav) -> dict[str, Path]:
    """Every hostile file, made with numpy + soundfile, espeak-ng and zipfile."""
    d = tmp_path_factory.mktemp("hostile")
    f: dict[str, Path] = {"speech": speech_wav}

    # --- audio
    f["text_as_wav"] = d / "notes.wav"
    f["text_as_wav"].write_text("This is a shopping list, not a recording.\n" * 50, encoding="utf-8")
    f["truncated_half"] = truncated_wav(d / "cut-half.wav", speech_wav, keep=0.5)
    f["truncated_header"] = truncated_wav(d / "cut-header.wav", speech_wav, keep=0.0)  # 60 bytes: header + 8 samples
    f["zero_samples"] = write_wav(d / "empty.wav", np.zeros(0, dtype=np.float32))
    f["short_0_2s"] = write_wav(d / "short.wav", tone(0.2))
    f["ten_minutes"] = write_wav(d / "ten-minutes.wav", tone(600.0, sr=8_000), sr=8_000)
    f["over_ten_minutes"] = write_wav(d / "ten-minutes-one.wav", tone(601.0, sr=8_000), sr=8_000)
    f["eight_ch_192k"] = write_wav(d / "surround.wav", tone(3.0, sr=192_000, channels=8), sr=192_000)
    nan = tone(3.0)
    nan[1_000:1_010] = np.nan
    f["nan"] = write_wav(d / "nan.wav", nan, subtype="FLOAT")
    inf = tone(3.0)
    inf[2_000] = np.inf
    inf[2_001] = -np.inf
    f["inf"] = write_wav(d / "inf.wav", inf, subtype="FLOAT")
    f["silence"] = write_wav(d / "silence.wav", np.zeros(3 * 24_000, dtype=np.float32))
    speech, sr = sf.read(str(speech_wav), dtype="float32")
    f["clipped"] = write_wav(d / "clipped.wav", np.clip(speech * 20.0, -1.0, 1.0), sr=sr)

    # --- voice archives
    wav = wav_bytes(2.0)

    def archive(name: str, members: list[tuple[Any, bytes | str]], compression=zipfile.ZIP_DEFLATED) -> Path:
        path = d / name
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            for member, data in members:
                z.writestr(member, data)
        return path

    def record(voice_id: str, name: str = "Zed") -> str:
        return json.dumps(voice_record(voice_id, name, wav))

    f["zip_slip"] = archive(
        "slip.zip", [("zed/voice.json", record("zed")), ("zed/reference.wav", wav), ("../../outside.txt", "escaped")]
    )
    f["zip_slip_voice"] = archive(
        "slip-voice.zip", [("../zed/voice.json", record("zed")), ("../zed/reference.wav", wav)]
    )
    f["zip_absolute"] = archive("absolute.zip", [("/tmp/zed/voice.json", record("zed")), ("zed/reference.wav", wav)])
    link = zipfile.ZipInfo("zed/reference.wav")
    link.external_attr = 0o120777 << 16  # a symbolic link to /etc/passwd
    f["zip_symlink"] = archive("symlink.zip", [("zed/voice.json", record("zed")), (link, "/etc/passwd")])
    f["zip_bomb"] = archive(
        "bomb.zip", [("zed/voice.json", record("zed")), ("zed/reference.wav", wav[:44] + bytes(50 << 20))]
    )
    # A bomb that lies: the central directory declares 1,000 bytes for 80 MB of zeros.
    liar = archive("liar.zip", [("zed/voice.json", record("zed")), ("zed/reference.wav", wav[:44] + bytes(80 << 20))])
    data = bytearray(liar.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]).endswith(b"reference.wav"):
            struct.pack_into("<I", data, at + 24, 1_000)
        at = data.find(b"PK\x01\x02", at + 4)
    liar.write_bytes(bytes(data))
    f["zip_bomb_lying"] = liar
    good = voice_zip(d / "good.zip", [("yara", "Yara"), ("xavi", "Xavi")])
    f["zip_truncated"] = d / "truncated.zip"
    f["zip_truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    f["zip_text"] = d / "notes.zip"
    f["zip_text"].write_text("not a zip archive", encoding="utf-8")
    f["zip_empty_file"] = d / "empty.zip"
    f["zip_empty_file"].write_bytes(b"")
    f["zip_half_bad"] = archive(
        "half-bad.zip",
        [
            ("walt/voice.json", record("walt", "Walt")),
            ("walt/reference.wav", wav),
            ("vera/voice.json", '{"schema": 1, "id": "vera"'),
            ("vera/reference.wav", wav),
        ],
    )
    f["zip_bad_name"] = archive(
        "bad-name.zip", [("ugo/voice.json", record("ugo", "U" * 1_000)), ("ugo/reference.wav", wav)]
    )
    f["zip_not_wav"] = archive(
        "not-wav.zip",
        [("tess/voice.json", record("tess", "Tess")), ("tess/reference.wav", b"ID3 this is not a wave file " * 40)],
    )
    crc = bytearray(
        archive(
            "crc.zip",
            [("sam/voice.json", record("sam", "Sam")), ("sam/reference.wav", wav)],
            compression=zipfile.ZIP_STORED,
        ).read_bytes()
    )
    crc[crc.find(b"data") + 200] ^= 0xFF  # one flipped byte inside the stored WAV: a CRC mismatch
    f["zip_bad_crc"] = d / "crc.zip"
    f["zip_bad_crc"].write_bytes(bytes(crc))
    with zipfile.ZipFile(d / "crowd.zip", "w") as z:
        for i in range(6_001):
            z.writestr(f"v{i}/notes.txt", "")
    f["zip_too_many_members"] = d / "crowd.zip"
    f["zip_existing_names"] = voice_zip(d / "clash.zip", [("existing-voice", EXISTING_VOICE)])
    return f


# --- the cases --------------------------------------------------------------------


@dataclass
class Case:
    id: str
    call: Callable[[Client, dict[str, Path], dict], Any]
    error: str | None = None  # a regex the refusal must match; None = success expected
    check: Callable[[Any, dict], None] | None = None  # for successes: what must hold


def predict(api_name: str, **kwargs: Any) -> Callable:
    def call(client: Client, files: dict[str, Path], server: dict) -> Any:
        values = {k: (handle_file(str(files[v.key])) if isinstance(v, F) else v) for k, v in kwargs.items()}
        return client.predict(**values, api_name=api_name)

    return call


@dataclass(frozen=True)
class F:
    """A test file by key, uploaded with handle_file."""

    key: str


def custom(text: Any = "Hello there.", **kwargs: Any) -> Callable:
    return predict("/custom_voice", **({"text": text, "speaker": "Ryan", "size": "0.6B"} | FAST | kwargs))


def design(text: Any = "Hello there.", **kwargs: Any) -> Callable:
    return predict("/design", **({"text": text, "description": "A calm, low voice."} | FAST | kwargs))


def clone(reference: str | None, **kwargs: Any) -> Callable:
    ref = F(reference) if reference else None
    return predict("/clone", **({"reference": ref, "text": "Hello there.", "size": "0.6B"} | FAST | kwargs))


def save(reference: str | None = "speech", name: str = "Hostile", **kwargs: Any) -> Callable:
    return predict(
        "/voice_save",
        **(
            {"reference": F(reference) if reference else None, "name": name, "transcript": "The quick brown fox."}
            | kwargs
        ),
    )


def import_zip(key: str) -> Callable:
    return predict("/voice_import", file=F(key))


def raw_call(api_name: str, data: list[Any]) -> Callable:
    """POST straight to Gradio's HTTP API, past everything gradio_client would tidy up first."""

    def call(client: Client, files: dict[str, Path], server: dict) -> Any:
        base = server["url"] + "gradio_api/call" + api_name
        event = httpx.post(base, json={"data": data}, timeout=30).json()["event_id"]
        stream = httpx.get(f"{base}/{event}", timeout=60).text
        kind = re.findall(r"^event: (\w+)", stream, re.M)[-1]
        payload = json.loads(re.findall(r"^data: (.*)$", stream, re.M)[-1])
        if kind == "error":
            raise AppError((payload or {}).get("error") or "")
        return payload

    return call


def take_ok(result: Any, server: dict) -> None:
    """A real take came back and it is in the history."""
    path, info = result
    data, sr = sf.read(path)
    assert sr == 24_000 and data.ndim == 1 and len(data) > 0
    assert info["take_id"] and (server["settings"].history_dir / info["take_id"]).is_dir()


def take_with(*fragments: str, reference_max: float | None = None) -> Callable:
    def check(result: Any, server: dict) -> None:
        take_ok(result, server)
        warnings = " ".join(result[1]["warnings"])
        for fragment in fragments:
            assert fragment in warnings, f"no warning about {fragment!r} in {result[1]['warnings']}"
        if reference_max is not None:
            assert 0 < result[1]["reference_s"] <= reference_max

    return check


def text_kept(expected: str) -> Callable:
    def check(result: Any, server: dict) -> None:
        take_ok(result, server)
        assert expected in result[1]["text"], result[1]["text"]

    return check


def voice_inside_library(name: str) -> Callable:
    """A name full of path tricks is just a name: the folder is a plain slug inside the library."""

    def check(result: Any, server: dict) -> None:
        voices_dir = server["settings"].voices_dir
        assert result["name"] == name
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", result["id"]), result["id"]
        folder = voices_dir / result["id"]
        assert folder.resolve().parent == voices_dir.resolve()
        assert (folder / "voice.json").is_file() and sf.info(str(folder / "reference.wav")).frames > 0
        data_dir = server["settings"].data_dir
        # audit.log is the one file the studio keeps beside the folders (the save is audited)
        assert sorted(p.name for p in data_dir.iterdir()) == ["audit.log", "demo-models", "history", "voices"]
        assert sorted(p.name for p in data_dir.parent.iterdir()) == ["data"], "something was written outside"

    return check


def imported_as(*names: str) -> Callable:
    def check(result: Any, server: dict) -> None:
        assert [v["name"] for v in result] == list(names)

    return check


HUMAN_CASES = [
    # --- text
    Case("text-empty", design(""), r"Enter some text"),
    Case("text-whitespace", custom(" \n\t\u00a0\u3000 "), r"Enter some text"),
    Case("text-100k-chars", custom("word " * 20_001), r"1\d\d,\d{3} characters; the limit is 50,000"),
    Case("description-100k-chars", design(description="deep " * 20_001), r"description"),
    Case("text-control-chars", custom("Hello\x00 there\x07,\x1b[31m world\x7f\x85 again."), check=take_ok),
    Case("text-emoji", custom("Good morning 👋🏽 world 🎉 👨‍👩‍👧 ready!"), check=text_kept("👨‍👩‍👧")),
    Case("text-right-to-left", custom("\u202bمرحبا بالعالم\u202c و שלום עולם."), check=text_kept("שלום")),
    Case("language-unsupported", custom(language="Klingon"), r"Language 'Klingon' is not supported"),
    Case("speaker-unknown", custom(speaker="Nobody"), r"Unknown speaker 'Nobody'"),
    # --- references
    Case("clone-no-reference", clone(None), r"Add a reference clip"),
    Case("save-no-reference", save(None), r"Add a reference clip"),
    Case("clone-unknown-library-voice", clone(None, voice="Ghost Voice"), r"No voice named 'Ghost Voice'"),
    Case("clone-text-file-renamed-wav", clone("text_as_wav"), r"not audio that can be read"),
    Case("save-text-file-renamed-wav", save("text_as_wav"), r"not audio that can be read"),
    Case("clone-truncated-wav-header-only", clone("truncated_header"), r"only 0\.\d\d s long"),
    Case("clone-truncated-wav-half", clone("truncated_half"), check=take_with("clones best", reference_max=3.5)),
    Case("clone-zero-samples", clone("zero_samples"), r"contains no audio"),
    Case("save-zero-samples", save("zero_samples"), r"contains no audio"),
    Case("clone-0.2s", clone("short_0_2s"), r"only 0\.20 s long; cloning needs at least 0\.5 s"),
    Case("save-0.2s", save("short_0_2s"), r"only 0\.20 s long"),
    Case("clone-10-minutes", clone("ten_minutes"), r"600\.0 s long; cloning uses at most 60 s.*start"),
    Case("clone-10-minutes-trimmed", clone("ten_minutes", start_s=30, end_s=40), check=take_with(reference_max=10.0)),
    Case("save-10-minutes", save("ten_minutes"), r"600\.0 s long; the library keeps at most 60 s"),
    Case("clone-over-10-minutes", clone("over_ten_minutes"), r"10:01 min \(601 s\) long; the limit is 10:00 min"),
    Case("clone-8ch-192khz", clone("eight_ch_192k"), check=take_with(reference_max=3.1)),
    Case("save-8ch-192khz", save("eight_ch_192k", name="Surround"), check=lambda r, s: r["reference_seconds"] > 2),
    Case("clone-nan-samples", clone("nan"), r"invalid samples \(NaN or infinity\)"),
    Case("clone-infinite-samples", clone("inf"), r"invalid samples \(NaN or infinity\)"),
    Case("save-nan-samples", save("nan"), r"invalid samples"),
    Case("clone-pure-silence", clone("silence"), r"completely silent"),
    Case("save-pure-silence", save("silence"), r"completely silent"),
    Case("clone-heavy-clipping", clone("clipped"), check=take_with("clipped")),
    Case("clone-heavy-clipping-not-normalised", clone("clipped", normalize=False), check=take_with("clipped")),
    Case("clone-trim-start-after-end", clone("speech", start_s=3, end_s=1), r"start \(3\.00 s\) must be before"),
    Case("clone-trim-past-the-end", clone("speech", start_s=100), r"starts at 100\.00 s but the audio is only"),
    Case("clone-trim-negative", clone("speech", start_s=-2), r"less than minimum value 0"),
    # --- voice names
    Case("name-dot-dot-slash", save(name="../../evil"), check=voice_inside_library("../../evil")),
    Case("name-slashes", save(name="a/b\\c:d*e"), check=voice_inside_library("a/b\\c:d*e")),
    Case("name-nul", save(name="bad\x00name"), r"NUL character"),
    Case("name-line-break", save(name="two\nlines"), r"control character"),
    Case("name-1000-chars", save(name="n" * 1_000), r"1,000 characters long; keep it to 100"),
    Case("name-empty", save(name="   "), r"Give the voice a name"),
    Case("name-duplicate", save(name="existing VOICE"), r"A voice named 'existing VOICE' already exists"),
    Case(
        "rename-to-duplicate",
        predict("/voice_rename", voice=OTHER_VOICE, new_name=EXISTING_VOICE.upper()),
        r"already exists",
    ),
    Case("rename-unknown", predict("/voice_rename", voice="../../../etc", new_name="x"), r"No voice named"),
    Case("delete-path", predict("/voice_delete", voice="../voices"), r"No voice named '\.\./voices'"),
    # --- voice archives
    Case("import-zip-slip", import_zip("zip_slip"), r"climbs out of its folder"),
    Case("import-zip-slip-voice", import_zip("zip_slip_voice"), r"climbs out of its folder"),
    Case("import-zip-absolute-path", import_zip("zip_absolute"), r"absolute path"),
    Case("import-zip-symlink", import_zip("zip_symlink"), r"symbolic link"),
    Case("import-zip-bomb", import_zip("zip_bomb"), r"zip bomb"),
    Case("import-zip-bomb-lying-header", import_zip("zip_bomb_lying"), r"damaged|zip bomb"),
    Case("import-zip-truncated", import_zip("zip_truncated"), r"not a valid zip archive.*cut short"),
    Case("import-text-renamed-zip", import_zip("zip_text"), r"not a valid zip archive"),
    Case("import-empty-file", import_zip("zip_empty_file"), r"not a valid zip archive"),
    Case("import-one-voice-damaged", import_zip("zip_half_bad"), r"'vera'.*damaged voice\.json.*nothing was imported"),
    Case("import-name-1000-chars", import_zip("zip_bad_name"), r"1,000 characters long"),
    Case("import-reference-not-wav", import_zip("zip_not_wav"), r"not WAV audio"),
    Case("import-bad-crc", import_zip("zip_bad_crc"), r"damaged and could not be unpacked"),
    Case("import-too-many-members", import_zip("zip_too_many_members"), r"6,001 files"),
    Case("import-no-file", predict("/voice_import", file=None), r"Choose a \.zip file"),
    Case("import-duplicate-names", import_zip("zip_existing_names"), check=imported_as(f"{EXISTING_VOICE} (imported)")),
    # --- API abuse: types
    Case("seed-string", custom(seed="abc"), r"'seed' must be a number, not text"),
    Case("seed-bool", custom(seed=True), r"'seed' must be a number"),
    Case("seed-huge", custom(seed=10**30), r"Seed is 1\d+; it must be a whole number from 0 to 4294967295"),
    Case("text-list", custom(["Hello", "there"]), r"'text' must be text, not a list"),
    Case("text-object", design({"text": "Hello"}), r"'text' must be text, not an object"),
    Case("text-number", custom(12345), r"'text' must be text, not 12345"),
    Case("speaker-list", custom(speaker=["Ryan"]), r"'speaker' must be text, not a list"),
    Case("temperature-string", custom(temperature="hot"), r"'temperature' must be a number"),
    Case("flag-string", custom(output_trim_silence="maybe"), r"'output_trim_silence' must be true or false"),
    Case(
        "reference-plain-path",
        predict("/clone", reference="/etc/passwd", text="Hi"),
        r"'reference' must be a file .*handle_file",
    ),
    Case(
        "reference-object-without-path",
        predict("/clone", reference={"name": "x.wav"}, text="Hi"),
        r"'reference' must be a file .*handle_file",
    ),
    Case(
        "reference-not-uploaded",
        raw_call(
            "/voice_save",
            [
                {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}},
                "",
                "Stolen",
                None,
                None,
                True,
                True,
                "Auto",
                "",
                "",
                "",
                False,  # high-pass
                False,  # noise reduction
            ],
        ),
        r"not uploaded by a user",
    ),
    Case("tags-number", predict("/voice_update", voice=EXISTING_VOICE, tags=5), r"Tags must be text"),
    Case("model-list", predict("/load_model", model=["demo-0.6B-Base"]), r"Name the model by its key"),
    # --- API abuse: values
    Case("temperature-negative", custom(temperature=-1), r"less than minimum value"),
    Case("temperature-huge", custom(temperature=1e9), r"greater than maximum value"),
    Case("top-k-negative", custom(top_k=-5), r"less than minimum value"),
    Case("top-k-huge", custom(top_k=1e12), r"greater than maximum value"),
    Case("top-p-above-one", custom(top_p=2.0), r"greater than maximum value"),
    Case("top-p-negative", custom(top_p=-0.1), r"less than minimum value"),
    Case("repetition-penalty-zero", custom(repetition_penalty=0), r"less than minimum value"),
    Case("repetition-penalty-huge", custom(repetition_penalty=1e9), r"greater than maximum value"),
    Case("max-seconds-negative", custom(max_seconds=-1), r"less than minimum value"),
    Case("max-seconds-huge", custom(max_seconds=1e12), r"greater than maximum value"),
    Case("fade-huge", custom(output_fade_in_s=1e9), r"greater than maximum value"),
    Case("format-unknown", custom(format="exe"), r"Output format 'exe' is not supported"),
    Case("format-path", custom(format="../../take"), r"is not supported"),
    Case("format-raw-pcm", custom(format="pcm"), r"Output format 'pcm' is not supported"),
    Case("normalise-unknown", custom(output_normalize="loud!!"), r"Normalisation 'loud!!' is not supported"),
    Case("size-unknown", custom(size="7B"), r"'size' must be one of 1.7B, 0.6B; not text \('7B'\)"),
    Case("load-model-unknown", predict("/load_model", model="nope"), r"Unknown model 'nope'. Known models"),
    Case("load-model-path", predict("/load_model", model="../../etc/passwd"), r"Unknown model"),
    Case("load-model-empty", predict("/load_model", model=""), r"Unknown model ''"),
    Case("unload-model-unknown", predict("/unload_model", model="nope"), r"Unknown model 'nope'"),
    Case("voices-unknown-kind", predict("/voices", kind="robot"), r"kind must be 'clone' or 'design'"),
]


def data_snapshot(settings) -> dict[str, str]:
    return tree_snapshot(settings.voices_dir, settings.history_dir)


@pytest.mark.parametrize("case", HUMAN_CASES, ids=[c.id for c in HUMAN_CASES])
def test_hostile_input(case: Case, server, client, files):
    settings = server["settings"]
    before = data_snapshot(settings)
    if case.error is None:
        result = case.call(client, files, server)
        case.check(result, server)
    else:
        with pytest.raises(AppError) as info:
            case.call(client, files, server)
        message = str(info.value)
        assert_human_message(message)
        assert re.search(case.error, message, re.S), f"{message!r} does not match {case.error!r}"
        assert data_snapshot(settings) == before, "a refused request changed the library or the history"
    assert client.predict(api_name="/languages")[:3] == ["Auto", "Chinese", "English"]


def test_the_battery_covers_every_kind_of_input():
    ids = {c.id for c in HUMAN_CASES}
    assert len(ids) == len(HUMAN_CASES) >= 30
    assert sum(c.error is None for c in HUMAN_CASES) >= 10, "successes where success is right"


# --- the UI's own paths ---------------------------------------------------------------


def handler(server, name: str, *, generator: bool | None = None) -> Callable:
    """An event handler of the running app, by its function name."""
    for block_fn in server["app"].fns.values():
        fn = block_fn.fn
        if getattr(fn, "__name__", None) == name and (
            generator is None or inspect.isgeneratorfunction(fn) == generator
        ):
            return fn
    raise LookupError(f"no handler named {name}")


def clip_preview(server) -> Callable:
    """The Clone tab's preview of a new clip, untrimmed, without clean-up: (preview, readout)."""
    new_clip = handler(server, "new_clip")
    return lambda ref, silence, norm: new_clip(ref, silence, norm, False, False, "")[2:4]


def ui_error(call: Callable[[], Any]) -> str:
    with pytest.raises(gr.Error) as info:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    message = info.value.message
    assert_human_message(message)
    return message


def ui_status(call: Callable[[], Any]) -> str:
    """The sentence a streaming Generate handler puts on its status line (its last output) when it
    refuses: the UI says why inline instead of failing the event (issue 14, defect 7)."""
    updates = list(call())
    status = updates[-1][-1]
    assert isinstance(status, str) and status.startswith("⚠️ "), updates[-1]
    message = status.removeprefix("⚠️ ")
    assert_human_message(message)
    return message


PREVIEW_ERRORS = [
    ("text_as_wav", r"not audio that can be read"),
    ("zero_samples", r"contains no audio"),
    ("nan", r"invalid samples"),
    ("over_ten_minutes", r"limit is 10:00 min"),
]


@pytest.mark.parametrize("key, error", PREVIEW_ERRORS, ids=[k for k, _ in PREVIEW_ERRORS])
def test_clone_preview_refuses_broken_clips(key, error, server, files):
    """Every upload is checked (check_upload): an unreadable clip is taken off the player and the
    reason said under it; the live preview (new_clip, which also draws the trim waveform) then stays
    empty without a second error."""
    settings = server["settings"]
    before = data_snapshot(settings)
    value, status = handler(server, "check_upload")(str(files[key]))
    assert value is None and status.startswith("⚠️ "), (value, status)
    message = status.removeprefix("⚠️ ")
    assert_human_message(message)
    assert re.search(error, message), message
    assert clip_preview(server)(str(files[key]), True, True) == (None, "")
    assert data_snapshot(settings) == before


def test_clone_preview_reads_out_problems_it_can_live_with(server, files):
    preview = clip_preview(server)
    (sr, samples), readout = preview(str(files["clipped"]), True, True)
    assert sr == 24_000 and len(samples) > 0 and "clipped" in readout
    (sr, samples), readout = preview(str(files["eight_ch_192k"]), True, True)
    assert sr == 24_000 and samples.ndim == 1 and abs(len(samples) / sr - 3.0) < 0.2
    # A 10-minute upload is allowed in the preview, so it can be trimmed there; the readout says so.
    (sr, samples), readout = preview(str(files["ten_minutes"]), False, False)
    assert len(samples) == 600 * sr and "Trim it" in readout
    (sr, samples), readout = preview(str(files["silence"]), True, True)
    assert "silence" in readout
    assert preview(None, True, True) == (None, "")


def test_ui_save_button_and_streaming_generate_refuse_clearly(server, files):
    """The visible buttons use their own handlers (save_from_ui, the streaming twins)."""
    settings = server["settings"]
    before = data_snapshot(settings)
    # "Save anyway" (the answer to the under-3-s question) goes straight to the checks that refuse.
    save_from_ui = handler(server, "save_confirmed")
    base = [str(files["speech"]), "The quick brown fox.", "ok", None, None, True, True, "Auto", "", "", ""]
    base += [False, False]  # high-pass, noise reduction
    for index, value, error in [
        (2, "bad\x00name", r"NUL"),
        (2, "x" * 1_000, r"1,000 characters"),
        (0, str(files["silence"]), r"completely silent"),
        (0, None, r"Add a reference"),
        (2, EXISTING_VOICE.lower(), r"already exists"),
    ]:
        values = list(base)
        values[index] = value
        assert re.search(error, ui_error(lambda: save_from_ui(*values)))
    sampling = [-1, 0.9, 50, 1.0, 1.05, 1, "wav", "none", 0.0, 0.0, False, False]
    stream_design = handler(server, "parse_design", generator=True)
    assert re.search(r"Enter some text", ui_status(lambda: stream_design("  ", "Auto", "calm", *sampling)))
    stream_custom = handler(server, "parse_custom_voice", generator=True)
    assert re.search(
        r"Unknown speaker", ui_status(lambda: stream_custom("Hi", "Nobody", "Auto", "", "0.6B", *sampling))
    )
    stream_clone = handler(server, "parse_clone", generator=True)
    clone_values = [str(files["short_0_2s"]), "", "", "Hi", "Auto", "0.6B", None, None, True, True, *sampling]
    assert re.search(r"at least 0\.5 s", ui_status(lambda: stream_clone(*clone_values)))
    clone_values[0] = str(files["ten_minutes"])
    assert re.search(r"at most 60 s", ui_status(lambda: stream_clone(*clone_values)))
    assert data_snapshot(settings) == before


# --- hostile HTTP requests to the /v1 API and its WebSocket ---------------------------------------

_SPEECH = {"model": "tts-1", "voice": "Ryan", "input": "Hi."}
_HOSTILE_HTTP: list[tuple[str, str, dict[str, Any], int, str | None]] = [
    # (name, method + path, httpx keyword arguments, status, param)
    (
        "not-json",
        "POST v1/audio/speech",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
        None,
    ),
    ("json-list", "POST v1/audio/speech", {"json": [1, 2]}, 400, None),
    ("json-string", "POST v1/audio/speech", {"json": "hello"}, 400, None),
    ("json-null", "POST v1/audio/speech", {"json": None}, 400, None),
    ("deep-arrays", "POST v1/audio/speech", {"content": b"[" * 200_000 + b"]" * 200_000}, 400, None),
    ("deep-objects", "POST v1/audio/speech", {"content": b'{"a":' * 5_000 + b"1" + b"}" * 5_000}, 400, None),
    ("nested-voice", "POST v1/audio/speech", {"json": {**_SPEECH, "voice": {"id": {"id": {"id": {}}}}}}, 400, "voice"),
    ("unknown-field", "POST v1/audio/speech", {"json": {**_SPEECH, "instruction": "x"}}, 400, "instruction"),
    ("prototype-field", "POST v1/audio/speech", {"json": {**_SPEECH, "__proto__": {}}}, 400, "__proto__"),
    ("input-number", "POST v1/audio/speech", {"json": {**_SPEECH, "input": 5}}, 400, "input"),
    ("input-empty", "POST v1/audio/speech", {"json": {**_SPEECH, "input": ""}}, 400, "input"),
    ("input-huge", "POST v1/audio/speech", {"json": {**_SPEECH, "input": "x" * 60_000}}, 400, "input"),
    ("input-nul", "POST v1/audio/speech", {"json": {**_SPEECH, "input": "\x00\x00"}}, 400, "input"),
    ("model-list", "POST v1/audio/speech", {"json": {**_SPEECH, "model": ["tts-1"]}}, 400, "model"),
    ("model-unknown", "POST v1/audio/speech", {"json": {**_SPEECH, "model": "../../etc/passwd"}}, 400, "model"),
    ("voice-traversal", "POST v1/audio/speech", {"json": {**_SPEECH, "voice": "../../etc/passwd"}}, 400, "voice"),
    ("voice-number", "POST v1/audio/speech", {"json": {**_SPEECH, "voice": 3}}, 400, "voice"),
    ("format-unknown", "POST v1/audio/speech", {"json": {**_SPEECH, "response_format": "exe"}}, 400, "response_format"),
    (
        "speed-nan",
        "POST v1/audio/speech",
        {"content": b'{"model":"tts-1","voice":"Ryan","input":"Hi","speed":NaN}'},
        400,
        "speed",
    ),
    ("seed-huge", "POST v1/audio/speech", {"json": {**_SPEECH, "seed": 10**40}}, 400, "seed"),
    ("temperature-string", "POST v1/audio/speech", {"json": {**_SPEECH, "temperature": "hot"}}, 400, "temperature"),
    ("max-tokens-negative", "POST v1/audio/speech", {"json": {**_SPEECH, "max_tokens": -1}}, 400, "max_new_tokens"),
    ("sample-rate-zero", "POST v1/audio/speech", {"json": {**_SPEECH, "sample_rate": 0}}, 400, "sample_rate"),
    (
        "ref-audio-url",
        "POST v1/audio/speech",
        {"json": {**_SPEECH, "task_type": "Base", "ref_audio": "http://169.254.169.254/", "ref_text": "x"}},
        400,
        "ref_audio",
    ),
    (
        "ref-audio-file",
        "POST v1/audio/speech",
        {"json": {**_SPEECH, "task_type": "Base", "ref_audio": "file:///etc/passwd", "ref_text": "x"}},
        400,
        "ref_audio",
    ),
    (
        "ref-audio-garbage",
        "POST v1/audio/speech",
        {"json": {**_SPEECH, "task_type": "Base", "ref_audio": "data:audio/wav;base64,AAAA", "ref_text": "x"}},
        400,
        "ref_audio",
    ),
    ("task-unknown", "POST v1/audio/speech", {"json": {**_SPEECH, "task_type": "Singing"}}, 400, "task_type"),
    (
        "embedding",
        "POST v1/audio/speech",
        {"json": {**_SPEECH, "speaker_embedding": [1e308] * 10}},
        400,
        "speaker_embedding",
    ),
    (
        "word-timestamps-streamed",
        "POST v1/audio/speech",
        {"json": {**_SPEECH, "word_timestamps": True, "stream": True}},
        400,
        "word_timestamps",
    ),
    (
        "word-timestamps-text",
        "POST v1/audio/speech",
        {"json": {**_SPEECH, "word_timestamps": "1"}},
        400,
        "word_timestamps",
    ),
    ("variants-huge", "POST v1/audio/speech", {"json": {**_SPEECH, "variants": 10_000}}, 400, "variants"),
    ("get-speech", "GET v1/audio/speech", {}, 405, None),
    ("put-voices", "PUT v1/audio/voices", {}, 405, None),
    ("made-up-path", "GET v1/audio/voices/x/y/z", {}, 404, None),
    ("made-up-route", "POST v1/chat/completions", {"json": {}}, 404, None),
    ("batch-empty", "POST v1/audio/speech/batch", {"json": {"items": []}}, 400, "items"),
    ("batch-huge", "POST v1/audio/speech/batch", {"json": {"items": [_SPEECH] * 100}}, 400, "items"),
    (
        "batch-bad-item",
        "POST v1/audio/speech/batch",
        {"json": {"items": [_SPEECH, {**_SPEECH, "typo": 1}]}},
        400,
        "items[1].typo",
    ),
    ("upload-json", "POST v1/audio/voices", {"json": {"name": "x"}}, 400, None),
    (
        "upload-unknown-field",
        "POST v1/audio/voices",
        {
            "files": {"audio_sample": ("a.wav", b"RIFF", "audio/wav")},
            "data": {"name": "X", "consent": "y", "evil": "1"},
        },
        400,
        "evil",
    ),
    (
        "upload-not-audio",
        "POST v1/audio/voices",
        {"files": {"audio_sample": ("a.wav", b"MZ\x90\x00", "audio/wav")}, "data": {"name": "X", "consent": "y"}},
        400,
        "audio_sample",
    ),
    ("delete-builtin", "DELETE v1/audio/voices/Ryan", {}, 400, "name"),
    ("delete-traversal", "DELETE v1/audio/voices/..%2F..%2Fetc", {}, 404, None),
    ("delete-missing", "DELETE v1/audio/voices/nobody", {}, 404, "name"),
    ("model-missing", "GET v1/models/nope", {}, 404, "model"),
]


@pytest.mark.parametrize("name, route, kwargs, status, param", _HOSTILE_HTTP, ids=[c[0] for c in _HOSTILE_HTTP])
def test_hostile_http_request_gets_a_clear_4xx(name, route, kwargs, status, param, server):
    import httpx

    method, path = route.split(" ", 1)
    response = httpx.request(method, server["url"] + path, timeout=60, **kwargs)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in response.text
    assert error["param"] == param, error


def test_hostile_websocket_messages_get_errors_and_the_server_stays_up(server):
    from websockets.sync.client import connect

    url = server["url"].replace("http://", "ws://") + "v1/audio/speech/stream"
    for first in ("not json", json.dumps([1]), json.dumps({"type": "session.config", "colour": "red"}), "[" * 100_000):
        with connect(url, open_timeout=30) as ws:
            ws.send(first)
            reply = json.loads(ws.recv(timeout=30))
            assert reply["type"] == "error" and reply["message"]
    metrics = httpx_get(server["url"] + "metrics")
    assert "x/y/z" not in metrics and "chat/completions" not in metrics


def httpx_get(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=30).text


def test_server_still_healthy_after_the_battery(server, client):
    """Nothing above left the library or the history in a state the studio cannot read."""
    from core.storage.history import History
    from core.storage.library import VoiceLibrary

    settings = server["settings"]
    voices = client.predict(api_name="/voices")
    assert EXISTING_VOICE in {v["name"] for v in voices}
    library = VoiceLibrary(settings.voices_dir)
    assert len(library.list()) == len(voices) and not library.warnings
    history = History(settings.history_dir)
    assert history.list() and not history.warnings
    assert not [p for p in settings.voices_dir.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
    assert not [p for p in settings.history_dir.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
    start = time.monotonic()
    path, info = client.predict(text="Still here.", speaker="Ryan", size="0.6B", **FAST, api_name="/custom_voice")
    assert sf.info(path).frames > 0 and time.monotonic() - start < 60
