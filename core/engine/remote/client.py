"""One remote server's HTTP client: ``GET {URL}/models`` and ``POST {URL}/audio/speech``.

``speech_stream`` asks for ``stream: true`` with ``response_format: pcm`` -- what
vLLM-Omni (``stream=true requires response_format='pcm'``) and a studio's own
``/v1/audio/speech`` both answer with raw 16-bit little-endian mono PCM sent as it is
generated -- and yields the samples block by block as they arrive. A server that
answers a whole file instead (one that ignores ``stream``) still works: its one
block arrives at the end.

Failures come back as :class:`RemoteFailure` with a kind that tells the pool
what to do: ``unreachable`` / ``timeout`` / ``server`` (5xx, 429, a broken
answer) count against the server and the chunk is retried elsewhere;
``rejected`` (4xx) is the request's own fault and would fail on any server,
so it goes straight back to the user. Messages name the server by URL and
never hold the bearer key.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.engine.remote.config import RemoteServer

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # a down server must fail in seconds, whatever the generation timeout
DISCOVERY_TIMEOUT_S = 5.0
RETRYABLE = ("unreachable", "timeout", "server")


class RemoteFailure(Exception):
    """A remote call that failed; ``kind`` is unreachable, timeout, server or rejected."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


class RemoteClient:
    def __init__(self, server: RemoteServer, *, timeout_s: float = 300.0):
        self.server = server
        headers = {"Authorization": f"Bearer {server.key}"} if server.key else {}
        self._http = httpx.Client(
            base_url=server.url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            follow_redirects=False,  # a redirect could carry the key to another host
        )

    def close(self) -> None:
        self._http.close()

    def list_models(self) -> dict[str, Any]:
        """The server's ``GET /models`` answer (OpenAI's list shape)."""
        response = self._request("GET", "models", timeout=DISCOVERY_TIMEOUT_S)
        try:
            data = response.json()
        except ValueError:
            raise RemoteFailure("server", "GET /models did not answer JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise RemoteFailure("server", "GET /models did not answer an OpenAI model list")
        return data

    def speech(self, payload: dict[str, Any]) -> tuple[Audio, httpx.Headers]:
        """One ``/audio/speech`` call for WAV; returns 24 kHz mono audio and the answer's headers."""
        response = self._request("POST", "audio/speech", json=payload)
        return _decode_wav(response.content), response.headers

    def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        """One JSON ``POST`` (a path under the base URL, or a whole URL on the same server); its JSON answer."""
        response = self._request("POST", path, json=payload)
        try:
            return response.json()
        except ValueError:
            raise RemoteFailure("server", f"POST {path} did not answer JSON") from None

    def speech_stream(self, payload: dict[str, Any]) -> Iterator[tuple[np.ndarray, int, httpx.Headers]]:
        """One streamed ``/audio/speech`` call: (float32 samples, sample rate, headers) per block received."""
        try:
            with self._http.stream("POST", "audio/speech", json={**payload, "stream": True}) as response:
                if response.status_code >= 400:
                    response.read()
                    _check(response)
                if "wav" in response.headers.get("content-type", ""):  # a whole file after all
                    audio = _decode_wav(response.read())
                    yield audio.samples, audio.sample_rate, response.headers
                    return
                rate = _sample_rate(response.headers)
                carry = b""
                for data in response.iter_bytes():
                    data = carry + data
                    cut = len(data) - len(data) % 2  # a block may end inside a 16-bit sample
                    carry = data[cut:]
                    if cut:
                        samples = np.frombuffer(data[:cut], dtype="<i2").astype(np.float32) / 32768.0
                        yield samples, rate, response.headers
        except httpx.TimeoutException as exc:
            raise RemoteFailure("timeout", f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # the server died mid-stream
            raise RemoteFailure("unreachable", _transport_message(exc)) from None

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise RemoteFailure("timeout", f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # refused, reset, DNS, TLS, the server died mid-answer
            raise RemoteFailure("unreachable", _transport_message(exc)) from None
        _check(response)
        return response


def _check(response: httpx.Response) -> None:
    """An error answer as a RemoteFailure of the right kind (see the module notes)."""
    if response.status_code < 400:
        return
    message = _error_message(response)
    if response.status_code in (401, 403):
        # The key is ours, not the request's: every take would fail on this server.
        raise RemoteFailure("server", f"refused the key ({response.status_code}: {message})", 401)
    kind = "server" if response.status_code >= 500 or response.status_code in (404, 408, 429) else "rejected"
    raise RemoteFailure(kind, f"{response.status_code}: {message}", response.status_code)


def _sample_rate(headers: httpx.Headers) -> int:
    """Raw PCM carries no rate: a studio says it in X-Sample-Rate; OpenAI's pcm is 24 kHz."""
    try:
        rate = int(headers.get("X-Sample-Rate", TARGET_SAMPLE_RATE))
    except ValueError:
        return TARGET_SAMPLE_RATE
    return rate if 8_000 <= rate <= 192_000 else TARGET_SAMPLE_RATE


def _transport_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"unreachable ({text[:200]})"


def _error_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI's ``{"error": {"message"}}``, vLLM's ``{"message"}``, or text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        for name in ("message", "detail", "error"):
            if isinstance(data.get(name), str):
                return str(data[name])[:500]
    return str(data)[:300]


def _decode_wav(data: bytes) -> Audio:
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise RemoteFailure("server", f"answered audio that could not be read ({exc})") from None
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if mono.size == 0 or not np.all(np.isfinite(mono)):
        raise RemoteFailure("server", "answered empty or unusable audio")
    if rate != TARGET_SAMPLE_RATE:
        import librosa

        mono = librosa.resample(mono, orig_sr=rate, target_sr=TARGET_SAMPLE_RATE)
    return Audio(np.asarray(mono, dtype=np.float32), TARGET_SAMPLE_RATE)


def wav_bytes(audio: Audio) -> bytes:
    """16-bit WAV of a clip, for a ``ref_audio`` data URL."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
