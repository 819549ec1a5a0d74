"""The named API through real gradio_client calls against a real server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import soundfile as sf
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from studio.api.endpoints import NAMED_API

DOCUMENTED = {endpoint.path for endpoint in NAMED_API}
FAST = {"seed": 5, "max_seconds": 1}


def assert_take(path: str, info: dict, mode: str) -> None:
    data, sr = sf.read(path)
    assert sr == 24_000
    assert data.ndim == 1 and len(data) > 0
    assert abs(len(data) / sr - info["duration_s"]) < 0.05
    assert info["mode"] == mode and info["sample_rate"] == 24_000 and info["demo"] is True
    assert {"load_s", "generate_s", "total_s", "rtf"} <= set(info["timings"])
    assert any("demo model" in w for w in info["warnings"])


def test_view_api_lists_exactly_the_documented_endpoints(client):
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(named) == DOCUMENTED
    assert not client.view_api(return_format="dict", print_info=False)["unnamed_endpoints"]


# Every named endpoint's parameters as gradio_client sees them: (name, has a default, default).
# The Advanced fields come from one table (studio/ui/advanced.py); scripts call these by name and
# position, so a change here breaks them: update this file only for a deliberate API change.
PINNED_PARAMETERS = json.loads((Path(__file__).parent / "named_api_parameters.json").read_text())


def test_every_named_endpoint_keeps_its_parameter_names_order_and_defaults(client):
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    seen = {
        path: [[p["parameter_name"], p["parameter_has_default"], p.get("parameter_default")] for p in ep["parameters"]]
        for path, ep in named.items()
    }
    assert seen == PINNED_PARAMETERS


def test_design(client):
    path, info = client.predict(
        text="Hello from a script.", language="English", description="A calm, low voice.", **FAST, api_name="/design"
    )
    assert_take(path, info, "voice_design")
    assert info["seed"] == 5 and info["model"] == "demo-1.7B-VoiceDesign"


def test_custom_voice_formats_and_ignored_instruct(client):
    path, info = client.predict(
        text="Good morning.",
        speaker="Ryan",
        instruct="Cheerful",
        size="0.6B",
        format="flac",
        **FAST,
        api_name="/custom_voice",
    )
    assert path.endswith(".flac")
    assert_take(path, info, "custom_voice")
    assert any("ignores style instructions" in w for w in info["warnings"])
    path, _ = client.predict(
        text="Good morning.", speaker="sohee", size="1.7B", format="mp3", **FAST, api_name="/custom_voice"
    )
    assert path.endswith(".mp3") and sf.info(path).samplerate == 24_000


def test_clone_with_and_without_transcript(client, speech_wav):
    path, info = client.predict(
        reference=handle_file(str(speech_wav)),
        transcript="The quick brown fox.",
        text="Cloned line.",
        size="0.6B",
        **FAST,
        api_name="/clone",
    )
    assert_take(path, info, "base")
    assert info["reference_s"] > 1
    _, info = client.predict(
        reference=handle_file(str(speech_wav)),
        text="Cloned line.",
        size="0.6B",
        start_s=0.5,
        end_s=2.5,
        **FAST,
        api_name="/clone",
    )
    assert any("x-vector-only" in w for w in info["warnings"])
    assert any("shorter" in w.lower() or "3" in w for w in info["warnings"])  # a 2 s clip is flagged
    assert info["reference_s"] <= 2.0


def test_same_seed_same_take(client):
    args = dict(text="Repeat me.", description="Bright voice.", seed=11, max_seconds=1, api_name="/design")
    a, _ = client.predict(**args)
    b, _ = client.predict(**args)
    assert (sf.read(a)[0] == sf.read(b)[0]).all()


def test_listing_endpoints(client):
    speakers = client.predict(api_name="/speakers")
    assert [s["name"] for s in speakers][:2] == ["Vivian", "Serena"] and len(speakers) == 9
    assert all(s["description"] and s["native_language"] for s in speakers)
    assert client.predict(api_name="/languages")[:3] == ["Auto", "Chinese", "English"]
    models = client.predict(api_name="/models")
    assert models["device"] == "cpu" and models["demo"] is True
    assert {m["key"] for m in models["models"]} >= {"demo-0.6B-Base", "demo-1.7B-VoiceDesign"}


def test_load_and_unload(client, studio_server):
    info = client.predict(model="demo-0.6B-Base", api_name="/load_model")
    assert info["model"] == "demo-0.6B-Base" and info["device"] == "cpu"
    states = {m["key"]: m["state"] for m in client.predict(api_name="/models")["models"]}
    assert states["demo-0.6B-Base"] == "loaded"
    assert client.predict(model="demo-0.6B-Base", api_name="/unload_model")["unloaded"] == ["demo-0.6B-Base"]
    assert studio_server["ctx"].app.models.resident_keys() == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(text="", description="x", api_name="/design"), "Enter some text"),
        (dict(text="hi", description="", api_name="/design"), "Describe the voice"),
        (dict(text="hi", description="x", language="Klingon", api_name="/design"), "Klingon"),
        (dict(text="hi", description="x", format="aiff", api_name="/design"), "aiff"),
        (dict(text="hi", description="x", temperature=7, api_name="/design"), "maximum value 1.5"),
        (dict(text="hi", speaker="Bob", api_name="/custom_voice"), "Unknown speaker 'Bob'"),
        (dict(text="hi", api_name="/clone"), "Add a reference clip"),
        (dict(model="9B-Nope", api_name="/load_model"), "Unknown model"),
        (dict(model="9B-Nope", api_name="/unload_model"), "Unknown model"),
    ],
)
def test_errors_are_clear_sentences(client, kwargs, message):
    with pytest.raises(AppError) as info:
        client.predict(**kwargs)
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


def test_non_audio_reference_is_rejected_clearly(client, tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio")
    with pytest.raises(AppError, match="not audio that can be read"):
        client.predict(reference=handle_file(str(fake)), text="hi", api_name="/clone")


def test_two_concurrent_designs_both_finish_and_load_once(client, studio_server):
    manager = studio_server["ctx"].app.models
    manager.unload()
    before = manager.load_count.get("demo-1.7B-VoiceDesign", 0)
    results, errors = [], []

    def call(seed):
        try:
            results.append(
                client.predict(text="Concurrent.", description="Any.", seed=seed, max_seconds=1, api_name="/design")
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2
    assert manager.load_count["demo-1.7B-VoiceDesign"] == before + 1


def test_handlers_see_the_calling_client(client, caplog):
    """Gradio only injects the request into positional parameters: the generation
    log must name the real client address, not the 'local' fallback."""
    import logging

    with caplog.at_level(logging.INFO, logger="core.engine.synthesis"):
        client.predict(text="Who is calling?", description="Any.", seed=1, max_seconds=0.5, api_name="/design")
    lines = [r.getMessage() for r in caplog.records if "event=generation" in r.getMessage()]
    assert lines and "client=127.0.0.1" in lines[-1]
