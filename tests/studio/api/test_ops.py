"""Operations on a real server: /health, /metrics, the audit log, headers, CORS and MCP."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re

import httpx
import pytest
import soundfile as sf
from gradio_client import Client

from studio.server import serve
from tests.conftest import free_port, make_demo_settings


def start(tmp_path_factory, demo_checkpoints, **extra):
    settings = make_demo_settings(
        tmp_path_factory.mktemp("ops-data"), demo_checkpoints, port=free_port(), rate_limit_per_minute=0, **extra
    )
    app, ctx = serve(settings, block=False)
    return app, ctx, f"http://127.0.0.1:{settings.port}/"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory, demo_checkpoints):
    app, ctx, url = start(tmp_path_factory, demo_checkpoints, cors_origins="https://app.example.com")
    try:
        yield url, ctx
    finally:
        app.close()


@pytest.fixture(scope="module")
def protected(tmp_path_factory, demo_checkpoints):
    app, ctx, url = start(tmp_path_factory, demo_checkpoints, auth="anna:pw")
    try:
        yield url, ctx
    finally:
        app.close()


def audit_lines(ctx) -> list[dict]:
    path = ctx.audit.path
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = (
        rf"^{re.escape(name)}(\{{{re.escape(wanted)}\}})? ([0-9.e+-]+)$"
        if labels
        else rf"^{re.escape(name)} ([0-9.e+-]+)$"
    )
    for line in text.splitlines():
        match = re.match(pattern, line)
        if match:
            return float(match.groups()[-1])
    raise AssertionError(f"{name}{labels} not in the metrics")


# --------------------------------------------------------------------------- health and metrics


def test_health_without_a_password_shows_details(open_server):
    body = httpx.get(f"{open_server[0]}health").json()
    assert body["status"] == "ok" and body["ready"] is True
    assert body["engine"]["device"] == "cpu" and body["engine"]["demo"] is True
    assert {m["key"] for m in body["models"]} >= {"demo-0.6B-CustomVoice", "demo-1.7B-Base"}
    assert body["queue"] == {"in_flight": 0, "depth": 0} and body["version"]


def test_health_details_need_the_password_when_one_is_set(protected):
    url = protected[0]
    assert httpx.get(f"{url}health").json() == {"status": "ok"}  # liveness for anyone
    assert httpx.get(f"{url}health", headers={"Authorization": "Bearer nope"}).json() == {"status": "ok"}
    details = httpx.get(f"{url}health", headers={"Authorization": "Bearer pw"}).json()
    assert details["engine"]["device"] == "cpu" and details["models"]


def test_metrics_count_generations_by_endpoint_and_mode(open_server):
    url, ctx = open_server
    speech = {"model": "tts-1", "voice": "Ryan", "input": "Hi.", "response_format": "wav", "seed": 1, "max_seconds": 1}
    assert httpx.post(f"{url}v1/audio/speech", json=speech, timeout=120).status_code == 200
    assert httpx.post(f"{url}v1/audio/speech", json={**speech, "voice": "Nobody"}).status_code == 400
    client = Client(url, verbose=False)
    client.predict(text="Hi.", description="A calm voice.", seed=1, max_seconds=0.5, api_name="/design")
    response = httpx.get(f"{url}metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, "qwen_tts_studio_requests_total", endpoint="/v1/audio/speech", mode="custom_voice") >= 1
    assert metric(text, "qwen_tts_studio_requests_total", endpoint="gradio", mode="voice_design") >= 1
    assert (
        metric(text, "qwen_tts_studio_request_errors_total", endpoint="/v1/audio/speech", mode="none", status="400")
        >= 1
    )
    assert metric(text, "qwen_tts_studio_generation_seconds_count", mode="custom_voice") >= 1
    assert metric(text, "qwen_tts_studio_audio_seconds_sum", mode="voice_design") > 0
    assert metric(text, "qwen_tts_studio_real_time_factor_count", mode="custom_voice") >= 1
    assert metric(text, "qwen_tts_studio_resident_models") >= 1
    assert metric(text, "qwen_tts_studio_model_load_seconds", model="demo-1.7B-VoiceDesign") > 0
    assert metric(text, "qwen_tts_studio_queue_depth") == 0
    assert metric(text, "qwen_tts_studio_in_flight_generations") == 0
    assert metric(text, "qwen_tts_studio_process_memory_bytes") > 10_000_000
    # Made-up paths and voice names are counted under the route's template: no new series.
    series = len(re.findall(r"^qwen_tts_studio_request_errors_total", text, re.M))
    for n in range(5):
        assert httpx.get(f"{url}v1/made/up/{n}").status_code == 404
        assert httpx.delete(f"{url}v1/audio/voices/nobody-{n}").status_code == 404
    text = httpx.get(f"{url}metrics").text
    assert (
        metric(text, "qwen_tts_studio_request_errors_total", endpoint="/v1/{rest:path}", mode="none", status="404") >= 5
    )
    assert "nobody-" not in text and "/made/up" not in text
    assert len(re.findall(r"^qwen_tts_studio_request_errors_total", text, re.M)) <= series + 2


def test_metrics_need_the_password_when_one_is_set(protected):
    url = protected[0]
    response = httpx.get(f"{url}metrics")
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{url}metrics", headers={"Authorization": "Bearer anna:pw"}).status_code == 200


# --------------------------------------------------------------------------- audit log


def test_audit_log_records_sensitive_actions_without_content(open_server, speech_wav):
    url, ctx = open_server
    client = Client(url, verbose=False)
    from gradio_client import handle_file

    saved = client.predict(
        reference=handle_file(str(speech_wav)),
        transcript="A secret transcript.",
        name="Audited",
        consent="mine",
        api_name="/voice_save",
    )
    client.predict(voice="Audited", new_name="Audited2", api_name="/voice_rename")
    client.predict(voice="Audited2", notes="quiet", api_name="/voice_update")
    client.predict(api_name="/load_model", model="0.6B-Base")
    # One model resident at most: loading another evicts 0.6B-Base, and that is audited too.
    client.predict(api_name="/load_model", model="0.6B-CustomVoice")
    evicted = [line for line in audit_lines(ctx) if line["action"] == "model.unload"]
    assert ("demo-0.6B-Base", "evicted") in [(e["object"], e.get("reason")) for e in evicted], evicted
    client.predict(api_name="/unload_model", model="0.6B-CustomVoice")
    client.predict(voice="Audited2", api_name="/voice_delete")
    lines = audit_lines(ctx)
    actions = [line["action"] for line in lines]
    for action in ("voice.save", "voice.rename", "voice.update", "model.load", "model.unload", "voice.delete"):
        assert action in actions, actions
    save = next(line for line in lines if line["action"] == "voice.save")
    assert save["object"] == saved["id"] and save["client"].endswith("127.0.0.1")
    assert set(save) >= {"time", "client", "action", "object"}
    assert next(line for line in lines if line["action"] == "voice.update")["fields"] == ["notes"]
    raw = ctx.audit.path.read_text(encoding="utf-8")
    assert "secret transcript" not in raw and "quiet" not in raw  # never text


def test_auth_failures_are_audited(protected):
    url, ctx = protected
    httpx.post(f"{url}v1/audio/speech", json={}, headers={"Authorization": "Bearer guess"})
    httpx.post(f"{url}login", data={"username": "anna", "password": "guess"})
    failures = [line for line in audit_lines(ctx) if line["action"] == "auth.failure"]
    assert {f["object"] for f in failures} >= {"/v1/audio/speech", "/login"}
    assert "guess" not in ctx.audit.path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- headers and CORS


def test_security_headers_on_every_response(open_server):
    url = open_server[0]
    for response in (
        httpx.get(url),
        httpx.get(f"{url}health"),
        httpx.get(f"{url}v1/nothing"),
        httpx.get(f"{url}config"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        assert "microphone=(self)" in response.headers["permissions-policy"]


def test_cors_only_for_listed_origins(open_server):
    url = f"{open_server[0]}v1/models"
    listed = httpx.get(url, headers={"Origin": "https://app.example.com"})
    assert listed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = httpx.get(url, headers={"Origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = httpx.options(f"{open_server[0]}v1/audio/speech", headers={"Origin": "https://app.example.com", **preflight})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://app.example.com"
    refused = httpx.options(f"{open_server[0]}v1/audio/speech", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers


def test_cors_is_off_by_default(protected):
    response = httpx.get(f"{protected[0]}health", headers={"Origin": "http://localhost:3000"})
    assert "access-control-allow-origin" not in response.headers


# --------------------------------------------------------------------------- MCP


async def _mcp(url: str, headers: dict[str, str] | None = None, call: bool = True, path: str = "mcp"):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(f"{url}{path}", headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            results = []
            if call:
                quick = {"seed": 1, "max_seconds": 0.5}
                results.append(await session.call_tool("custom_voice", {"text": "Hello.", "speaker": "Ryan", **quick}))
                results.append(await session.call_tool("clone", {"text": "Hello.", "voice": "Narrator", **quick}))
                results.append(await session.call_tool("custom_voice", {"text": "Hello.", "speaker": "Nobody"}))
            return tools, results


def test_mcp_tools_have_the_documented_names_and_return_audio(open_server, speech_wav):
    from core.audio.io import load_audio
    from tests.conftest import SPEECH_TEXT

    url, ctx = open_server
    ctx.app.library.save(
        name="Narrator", kind="clone", reference=load_audio(speech_wav), transcript=SPEECH_TEXT, language="English"
    )
    tools, (spoken, cloned, refused) = asyncio.run(_mcp(url))
    by_name = {t.name: t for t in tools}
    assert {"custom_voice", "design", "clone", "speakers", "voices", "languages"} <= set(by_name)
    custom = by_name["custom_voice"]
    assert "speaker" in custom.description.lower()
    properties = custom.inputSchema["properties"]
    assert properties["text"]["type"] == "string" and properties["text"]["description"]
    assert properties["speaker"]["default"] == "Ryan" and "context" not in properties
    assert custom.inputSchema["required"] == ["text"]
    for result, kind, voice in ((spoken, "custom_voice", "Ryan"), (cloned, "clone", "Narrator")):
        assert not result.isError, result
        audio, details = result.content
        assert audio.type == "audio" and audio.mimeType == "audio/wav"
        wav = base64.b64decode(audio.data)
        assert wav[:4] == b"RIFF" and sf.info(io.BytesIO(wav)).samplerate == 24_000
        info = json.loads(details.text)  # JSON, not a Python repr
        assert info["seed"] == 1 and 0 < info["duration_s"] <= 0.6
        take = ctx.app.history.get(info["take_id"])
        assert take.request["kind"] == kind
        assert (take.request.get("speaker") or take.voice.get("voice")) == voice
    assert refused.isError and "Unknown voice 'Nobody'" in refused.content[0].text
    # Configurations written for Gradio's MCP path reach the same server.
    tools, _ = asyncio.run(_mcp(url, call=False, path="gradio_api/mcp/"))
    assert "custom_voice" in {t.name for t in tools}


def test_mcp_needs_the_password_when_one_is_set(protected):
    for path in ("mcp", "gradio_api/mcp/"):
        response = httpx.post(f"{protected[0]}{path}", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert response.status_code == 401
    tools, _ = asyncio.run(_mcp(protected[0], {"Authorization": "Bearer pw"}, call=False))
    assert "custom_voice" in {t.name for t in tools}
