"""The Voice Library's named API through real gradio_client calls against a real server.

The module-scoped server may be shared with other modules in one run, so every
test uses its own voice names.
"""

from __future__ import annotations

import uuid
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import free_port, make_demo_settings

LIBRARY_ENDPOINTS = {
    "/voices",
    "/voice_rename",
    "/voice_update",
    "/voice_delete",
    "/voice_export",
    "/voice_import",
    "/voice_save",
}
FAST = {"seed": 3, "max_seconds": 0.5, "size": "0.6B"}


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:6]}"


def save_voice(client: Client, wav: Path, name: str, **fields) -> dict:
    return client.predict(
        reference=handle_file(str(wav)),
        transcript=fields.pop("transcript", "The quick brown fox."),
        name=name,
        api_name="/voice_save",
        **fields,
    )


def names(voices: list[dict]) -> set[str]:
    return {v["name"] for v in voices}


def app_error(client: Client, **kwargs) -> str:
    with pytest.raises(AppError) as info:
        client.predict(**kwargs)
    message = str(info.value)
    assert "Traceback" not in message
    return message


def test_view_api_documents_the_library_endpoints(client):
    api = client.view_api(return_format="dict", print_info=False)
    named = api["named_endpoints"]
    assert LIBRARY_ENDPOINTS <= set(named)
    assert not api["unnamed_endpoints"]
    params = {p["parameter_name"]: p for p in named["/voice_update"]["parameters"]}
    assert list(params) == ["voice", "notes", "tags", "transcript", "language", "consent"]
    assert not params["voice"]["parameter_has_default"]
    assert all(
        params[k]["parameter_has_default"] and params[k]["parameter_default"] is None
        for k in ("notes", "tags", "transcript", "language", "consent")
    )
    assert [p["parameter_name"] for p in named["/voices"]["parameters"]] == ["query", "kind", "language", "tag"]
    assert [p["parameter_name"] for p in named["/voice_export"]["parameters"]] == ["voices"]
    assert [p["parameter_name"] for p in named["/voice_import"]["parameters"]] == ["file"]


def test_list_and_filter(client, speech_wav):
    tag = f"tag{uuid.uuid4().hex[:6]}"
    anna = save_voice(
        client,
        speech_wav,
        unique("Anna"),
        tags=f"{tag}, warm",
        notes="Calm narrator",
        language="English",
        consent="My own voice",
    )
    assert anna["kind"] == "clone" and anna["language"] == "english" and anna["tags"] == [tag, "warm"]
    assert anna["transcript"] == "The quick brown fox." and 1 < anna["reference_seconds"] < 10
    assert "path" not in anna
    bob = save_voice(client, speech_wav, unique("Bob"), tags=tag, language="German")

    everything = client.predict(api_name="/voices")
    assert {anna["name"], bob["name"]} <= names(everything)
    assert [v["name"].casefold() for v in everything] == sorted(v["name"].casefold() for v in everything)

    assert names(client.predict(tag=tag.upper(), api_name="/voices")) == {anna["name"], bob["name"]}
    assert names(client.predict(tag=tag, language="English", api_name="/voices")) == {anna["name"]}
    assert names(client.predict(tag=tag, language="german", kind="clone", api_name="/voices")) == {bob["name"]}
    assert client.predict(tag=tag, kind="design", api_name="/voices") == []
    assert names(client.predict(query=f"calm {anna['name'].split()[1]}", api_name="/voices")) == {anna["name"]}
    assert names(client.predict(query="narrator", tag=tag, kind="all", language="all", api_name="/voices")) == {
        anna["name"]
    }


def test_rename_update_and_delete(client, speech_wav):
    voice = save_voice(
        client, speech_wav, unique("Carla"), tags="one, two", notes="first notes", consent="Recorded with permission"
    )
    new_name = unique("Carla renamed")
    renamed = client.predict(voice=voice["name"], new_name=new_name, api_name="/voice_rename")
    assert renamed["name"] == new_name and renamed["id"] == voice["id"]
    assert client.predict(query=new_name, api_name="/voices")[0]["id"] == voice["id"]

    # Only the fields given change; None (omitted) leaves the rest as it was.
    updated = client.predict(voice=voice["id"], notes="Better notes", api_name="/voice_update")
    assert updated["notes"] == "Better notes"
    assert updated["tags"] == ["one", "two"] and updated["consent"] == "Recorded with permission"
    assert updated["transcript"] == "The quick brown fox."

    updated = client.predict(
        voice=new_name.upper(),
        tags="a, b, A",
        transcript="Something else.",
        language="French",
        consent="",
        api_name="/voice_update",
    )
    assert updated["tags"] == ["a", "b"] and updated["language"] == "french"
    assert updated["transcript"] == "Something else." and updated["consent"] == ""
    assert updated["notes"] == "Better notes"

    # An empty transcript clears it (x-vector-only cloning); an empty language is "auto".
    updated = client.predict(voice=voice["id"], transcript="", language="", api_name="/voice_update")
    assert updated["transcript"] is None and updated["language"] == "auto"

    assert client.predict(voice=new_name, api_name="/voice_delete") == {"deleted": voice["id"], "name": new_name}
    assert voice["id"] not in {v["id"] for v in client.predict(api_name="/voices")}
    assert "No voice named" in app_error(client, voice=voice["id"], api_name="/voice_delete")


def test_export_import_round_trip(client, speech_wav, tmp_path):
    first = save_voice(client, speech_wav, unique("Dora"), tags="export-test", notes="Round trip")
    second = save_voice(client, speech_wav, unique("Eve, the second"))  # a name with a comma

    path = client.predict(voices=f"{first['name']}, {second['name']}", api_name="/voice_export")
    assert path.endswith(".zip")
    with zipfile.ZipFile(path) as archive:
        members = sorted(archive.namelist())
    assert members == sorted(
        [
            f"{first['id']}/voice.json",
            f"{first['id']}/reference.wav",
            f"{second['id']}/voice.json",
            f"{second['id']}/reference.wav",
        ]
    )

    single = client.predict(voices=first["id"], api_name="/voice_export")
    with zipfile.ZipFile(single) as archive:
        assert {m.split("/")[0] for m in archive.namelist()} == {first["id"]}

    everything = client.predict(api_name="/voice_export")
    with zipfile.ZipFile(everything) as archive:
        assert {first["id"], second["id"]} <= {m.split("/")[0] for m in archive.namelist()}

    imported = client.predict(file=handle_file(path), api_name="/voice_import")
    assert sorted(v["name"] for v in imported) == sorted(
        [f"{first['name']} (imported)", f"{second['name']} (imported)"]
    )
    copy = next(v for v in imported if v["name"].startswith(first["name"]))
    assert copy["id"] != first["id"]
    assert copy["notes"] == "Round trip" and copy["tags"] == ["export-test"]
    assert copy["reference_sha256"] == first["reference_sha256"]
    listed = names(client.predict(api_name="/voices"))
    assert {first["name"], second["name"], *(v["name"] for v in imported)} <= listed

    assert "No voice named" in app_error(
        client, voices=f"{first['name']}, Nobody {uuid.uuid4().hex[:6]}", api_name="/voice_export"
    )


def test_clone_with_a_library_voice_reuses_its_prompt(client, speech_wav):
    voice = save_voice(client, speech_wav, unique("Fay"))
    path, info = client.predict(voice=voice["name"], text="Hello from the library.", **FAST, api_name="/clone")
    assert sf.info(path).samplerate == 24_000 and info["voice"] == voice["name"]
    assert info["prompt_cached"] is False
    _, info = client.predict(voice=voice["id"], text="And again.", **FAST, api_name="/clone")
    assert info["prompt_cached"] is True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(voice="Nobody at all", new_name="X", api_name="/voice_rename"), "No voice named 'Nobody at all'"),
        (dict(voice="Nobody at all", notes="x", api_name="/voice_update"), "No voice named 'Nobody at all'"),
        (dict(voice="Nobody at all", api_name="/voice_delete"), "No voice named 'Nobody at all'"),
        (dict(voices="Nobody at all", api_name="/voice_export"), "No voice named 'Nobody at all'"),
        (dict(voice="Nobody at all", text="hi", api_name="/clone"), "No voice named 'Nobody at all'"),
        (dict(voice="", new_name="X", api_name="/voice_rename"), "Choose a voice"),
        (dict(api_name="/voice_import"), "Choose a .zip file"),
    ],
)
def test_unknown_voices_are_clear_errors(client, kwargs, message):
    assert message in app_error(client, **kwargs)


def test_bad_names_are_refused(client, speech_wav):
    voice = save_voice(client, speech_wav, unique("Gus"))
    other = save_voice(client, speech_wav, unique("Hana"))
    assert "already exists" in app_error(
        client, reference=handle_file(str(speech_wav)), name=voice["name"].upper(), api_name="/voice_save"
    )
    assert "Give the voice a name" in app_error(
        client, reference=handle_file(str(speech_wav)), name="   ", api_name="/voice_save"
    )
    assert "already exists" in app_error(client, voice=voice["id"], new_name=other["name"], api_name="/voice_rename")
    assert "Give the voice a name" in app_error(client, voice=voice["id"], new_name="", api_name="/voice_rename")
    assert "NUL character" in app_error(client, voice=voice["id"], new_name="bad\x00name", api_name="/voice_rename")
    assert "keep it to 100" in app_error(client, voice=voice["id"], new_name="x" * 1000, api_name="/voice_rename")
    assert "control character" in app_error(client, voice=voice["id"], notes="a\x00b", api_name="/voice_update")
    assert "not supported" in app_error(client, voice=voice["id"], language="Klingon", api_name="/voice_update")
    # Nothing was changed by the refusals.
    assert client.predict(query=voice["name"], api_name="/voices")[0]["name"] == voice["name"]


def test_unsafe_or_broken_imports_are_refused(client, speech_wav, tmp_path):
    before = {v["id"] for v in client.predict(api_name="/voices")}

    not_zip = tmp_path / "voices.zip"
    not_zip.write_text("this is not a zip archive")
    assert "not a valid zip archive" in app_error(client, file=handle_file(str(not_zip)), api_name="/voice_import")

    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("../evil/voice.json", "{}")
        archive.writestr("../evil/reference.wav", speech_wav.read_bytes())
    assert "unsafe" in app_error(client, file=handle_file(str(slip)), api_name="/voice_import")

    stray = tmp_path / "stray.zip"
    with zipfile.ZipFile(stray, "w") as archive:
        archive.writestr("anna/voice.json", "{}")
        archive.writestr("anna/run.sh", "echo hi")
    assert "not part of a voice export" in app_error(client, file=handle_file(str(stray)), api_name="/voice_import")

    assert {v["id"] for v in client.predict(api_name="/voices")} == before


def test_voices_survive_a_restart(tmp_path, demo_checkpoints, speech_wav):
    from studio.server import serve

    def start():
        settings = make_demo_settings(tmp_path / "data", demo_checkpoints, port=free_port())
        app, _ = serve(settings, block=False)
        return app, Client(f"http://127.0.0.1:{settings.port}/", verbose=False)

    app, client = start()
    try:
        saved = save_voice(client, speech_wav, "Ivy keeps", tags="restart", notes="Kept across restarts")
    finally:
        app.close()

    app, client = start()
    try:
        listed = client.predict(api_name="/voices")
        assert [v["id"] for v in listed] == [saved["id"]]
        assert listed[0] == saved
        path, info = client.predict(voice="ivy keeps", text="Still here.", **FAST, api_name="/clone")
        assert info["voice"] == "Ivy keeps" and sf.info(path).frames > 0
    finally:
        app.close()
