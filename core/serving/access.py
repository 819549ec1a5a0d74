"""Serving safety: who may connect, and refusing to expose an open studio.

A studio bound to a LAN address without a password lets anyone on the
network run models and read the voice library, so that combination needs an
explicit ``--insecure-no-auth``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from core.errors import SettingsError
from core.settings import Settings


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def _parse_pairs(text: str, source: str) -> list[tuple[str, str]]:
    pairs = []
    for number, raw in enumerate(text.replace(",", "\n").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise SettingsError(f"{source}, entry {number}: expected user:password.")
        pairs.append((user.strip(), password))
    return pairs


def credentials(settings: Settings) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if settings.auth:
        pairs += _parse_pairs(settings.auth, "Setting 'auth'")
    if settings.auth_file:
        path = Path(settings.auth_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"Could not read the credentials file {path}: {exc.strerror}.") from None
        found = _parse_pairs(text, f"Credentials file {path}")
        if not found:
            raise SettingsError(f"The credentials file {path} holds no user:password lines.")
        pairs += found
    return pairs


def check_serving(settings: Settings) -> list[tuple[str, str]]:
    """Validates the serving settings and returns the credentials to enforce."""
    pairs = credentials(settings)
    if not is_loopback(settings.host) and not pairs and not settings.insecure_no_auth:
        raise SettingsError(
            f"Refusing to listen on {settings.host} without a password: anyone on the network could "
            "use the studio and its voice library. Add --auth user:password (or "
            "QWEN_TTS_STUDIO_AUTH, or --auth-file), or pass --insecure-no-auth if the network is trusted."
        )
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise SettingsError("TLS needs both --ssl-certfile and --ssl-keyfile.")
    for name in ("ssl_certfile", "ssl_keyfile"):
        path = getattr(settings, name)
        if path and not Path(path).is_file():
            raise SettingsError(f"Setting '{name}': the file {path} does not exist.")
    return pairs
