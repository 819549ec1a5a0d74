"""Remote engine servers as configured: ``--remote-engine URL[#key=SECRET | #key_env=NAME]``.

A URL is the base of an OpenAI-compatible Qwen3-TTS speech API (a vLLM-Omni
server, another Qwen TTS Studio, an mlx-audio server): the studio calls
``{URL}/models`` and ``{URL}/audio/speech``. A URL without a path gets ``/v1``.

The optional bearer key rides in the URL's fragment, which no HTTP client ever
sends: ``#key=SECRET`` holds it inline (keep such a value in config.toml or the
environment, not on a command line others can list), ``#key_env=NAME`` reads it
from the environment variable NAME at start. Credentials in the URL itself
(``user:pass@host``) are refused, so a URL can always be shown and logged as is.

Remote URLs come only from the studio's own configuration (these settings),
never from a request: nothing in the API or the UI can point the studio at
another server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.errors import SettingsError
from core.settings import redact, split_entry


@dataclass(frozen=True)
class RemoteServer:
    """One configured server: where it is and, optionally, its bearer key (never shown)."""

    url: str  # the API base, e.g. http://gpu-box:8000/v1 (no trailing slash, no credentials)
    key: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """What logs, errors, /health, /models and take details show: the URL, never the key."""
        return self.url

    def __repr__(self) -> str:
        return f"RemoteServer({self.url!r}, key={'***' if self.key else None})"


def servers_from_settings(entries: tuple[str, ...], env: Mapping[str, str] | None = None) -> list[RemoteServer]:
    """The configured servers with their keys resolved; a missing key variable fails at start."""
    env = os.environ if env is None else env
    servers: list[RemoteServer] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            url, key, env_name = split_entry(entry)
        except ValueError as exc:
            raise SettingsError(f"Invalid remote engine {redact(entry)!r}: use {exc}.") from None
        if env_name is not None:
            key = env.get(env_name)
            if not key:
                raise SettingsError(
                    f"The remote engine {url} takes its key from the environment variable {env_name}, which is not set."
                )
        if url in seen:
            raise SettingsError(f"The remote engine {url} is configured twice; list each server once.")
        seen.add(url)
        servers.append(RemoteServer(url, key))
    return servers
