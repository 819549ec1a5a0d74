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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.errors import SettingsError

FALLBACKS = ("none", "local")
_FRAGMENT = re.compile(r"^(?P<name>key|key_env)=(?P<value>.+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def split_entry(text: str) -> tuple[str, str | None, str | None]:
    """(url, inline key, env var name) of one entry; raises ValueError with a message that never holds the key."""
    raw = str(text).strip()
    url, sep, fragment = raw.partition("#")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a URL such as http://gpu-box:8000/v1 (optionally followed by #key=... or #key_env=NAME)")
    if parts.username or parts.password:
        raise ValueError("a URL without user:password@ in it; give the key as URL#key=... or URL#key_env=NAME")
    if parts.query:
        raise ValueError("a URL without a ?query part")
    if not parts.path:
        url += "/v1"
    key = env = None
    if sep:
        match = _FRAGMENT.match(fragment.strip())
        if not match:
            raise ValueError("the key as URL#key=... or URL#key_env=NAME after the URL (the key was not shown)")
        if match["name"] == "key":
            key = match["value"]
        else:
            env = match["value"]
            if not _ENV_NAME.match(env):
                raise ValueError("#key_env=NAME with NAME an environment variable name")
    return url, key, env


def parse_remote_engines(value: Any) -> tuple[str, ...]:
    """Settings parser: a list (flags, config.toml) or one comma-separated string (env var)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = [item for item in value.split(",") if item.strip()]
    elif isinstance(value, (list, tuple)):
        items = [str(item) for item in value if str(item).strip()]
    else:
        raise ValueError("URLs (a list in config.toml, comma-separated in the environment)")
    entries = []
    for item in items:
        split_entry(item)  # validates
        entries.append(item.strip())
    return tuple(entries)


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


def redact(text: str) -> str:
    """An entry as it may be shown: the inline key (and any user:password@) replaced by ***."""
    url, sep, fragment = str(text).partition("#")
    scheme, found, rest = url.partition("://")
    if found and "@" in rest.split("/", 1)[0]:  # user:password@host: the password must not show either
        url = f"{scheme}://***@{rest.split('@', 1)[1]}"
    if not sep:
        return url
    return f"{url}#key=***" if fragment.strip().startswith("key=") else f"{url}#{fragment}"
