"""Studio settings and where they come from.

Precedence, highest first: command-line flags > ``QWEN_TTS_STUDIO_*``
environment variables > ``config.toml`` in the user config dir > defaults.
Every value passes through the same parser whatever its source, so a bad value
fails at start with one message that names the setting, the source and what it
allows, instead of surfacing later as a confusing model error.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from core.errors import SettingsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has no tomllib
    import tomli as tomllib

APP_NAME = "qwen-tts-studio"
ENV_PREFIX = "QWEN_TTS_STUDIO_"

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")
# int8: dynamic int8 Linears on the CPU (faster, lossy; docs/PERFORMANCE.md). none: as released.
QUANTIZE = ("none", "int8")


class EngineKind(str, Enum):
    """Which engine makes a take (core/engine/interface.py). The settings' vocabulary (``--engine``
    picks one of AUTO, TORCH, MLX; ``--remote-engine`` adds REMOTE), so it lives here: the settings
    import nothing from core/engine/, and the engines import this."""

    AUTO = "auto"  # the MLX engine on Apple Silicon once installed, torch otherwise (core/engine/selection.py)
    TORCH = "torch"  # qwen-tts in this process (core/engine/torch_engine.py)
    MLX = "mlx"  # mlx-audio in its own environment, as a child process (core/engine/mlx/)
    REMOTE = "remote"  # OpenAI-compatible servers, routed per checkpoint (core/engine/remote/)


class MlxQuantize(str, Enum):
    """The MLX engine's weights (``--mlx-quantize``): as stored, or quantized by the child at load
    with MLX's own ``nn.quantize`` (group size 64, the layers mlx-audio's converter would pick)."""

    BF16 = "bf16"  # no quantization: the checkpoint's own weights
    Q8 = "8bit"
    Q6 = "6bit"
    Q4 = "4bit"

    @property
    def bits(self) -> int | None:
        return None if self is MlxQuantize.BF16 else int(self.value[0])


DECODE = ("stock", "static")  # the generate loop (core/engine/static_decode.py)
ENGINES = tuple(k.value for k in (EngineKind.AUTO, EngineKind.TORCH, EngineKind.MLX))
MLX_QUANTIZE = tuple(q.value for q in MlxQuantize)
# What a checkpoint served by remote engines does when every server for it is down.
FALLBACKS = ("none", "local")
SIZES = ("0.6B", "1.7B")
LOG_LEVELS = ("debug", "info", "warning", "error")


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    data_dir: Path = field(default_factory=default_data_dir)
    # Where Hugging Face downloads land; None means huggingface_hub's own default cache.
    hf_cache_dir: Path | None = None
    # A plain folder of checkpoints (one sub-folder per repo name) used instead of the cache.
    models_dir: Path | None = None
    # Explicit local checkpoint folders per mode; they win over everything else.
    checkpoint_voice_design: Path | None = None
    checkpoint_custom_voice: Path | None = None
    checkpoint_base: Path | None = None
    # Transcription (core/engine/transcription.py, docs/ASR.md): a local Whisper folder that
    # wins over everything, the Hugging Face Whisper repo otherwise, and whether an empty
    # reference transcript is filled in by itself at generate and save time.
    checkpoint_asr: Path | None = None
    asr_model: str = "openai/whisper-small"
    auto_transcribe: bool = False
    device: str = "auto"
    dtype: str = "auto"
    quantize: str = "none"
    decode: str = "stock"  # static: the static-cache loop, same codes; stock until a GPU shows its gain
    engine: str = EngineKind.AUTO.value  # which engine generates: see ENGINES
    mlx_quantize: str = "bf16"  # the MLX engine's weights: bf16 (as stored) or 8/6/4-bit at load
    preferred_size: str = "1.7B"
    offline: bool = False
    demo_models: bool = False
    max_resident: int = 1
    max_text_chars: int = 50_000
    chunk_chars: int = 300
    log_level: str = "info"
    # Serving safety (see core/serving/access.py): a password is required off loopback.
    auth: str | None = None  # "user:password"; several separated by commas
    auth_file: Path | None = None  # one "user:password" per line
    insecure_no_auth: bool = False
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    max_upload_mb: int = 200
    rate_limit_per_minute: int = 30  # generation requests per client; 0 turns the limit off
    history_max_takes: int = 500  # the oldest takes are pruned beyond either limit
    history_max_mb: int = 2000
    # Operations (docs/OPERATIONS.md): browser origins allowed to call the HTTP API
    # (comma-separated; none by default), seconds to let in-flight takes finish on
    # SIGTERM/SIGINT, and the MCP server at /mcp (studio/api/mcp_tools.py).
    cors_origins: str | None = None
    shutdown_timeout: int = 30
    mcp_server: bool = True
    # Remote engines (core/engine/remote/, docs/OPERATIONS.md "Remote engines"): OpenAI-compatible
    # Qwen3-TTS servers that generate the checkpoints they serve, each URL with an
    # optional #key=... / #key_env=NAME; "local" fallback uses the local model when
    # every server for a checkpoint is down. Seconds per remote request, failures
    # in a row that open a server's circuit, seconds before it is probed again.
    remote_engine: tuple[str, ...] = ()
    engine_fallback: str = "none"
    remote_timeout: int = 300
    remote_failures: int = 3
    remote_cooldown: int = 30

    @property
    def voices_dir(self) -> Path:
        return self.data_dir / "voices"

    @property
    def history_dir(self) -> Path:
        return self.data_dir / "history"

    @property
    def datasets_dir(self) -> Path:  # fine-tuning datasets (core/finetune/dataset_store.py)
        return self.data_dir / "datasets"

    def __repr__(self) -> str:  # never print passwords into logs or tracebacks
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        if shown["auth"]:
            shown["auth"] = "***"
        shown["remote_engine"] = tuple(redact(entry) for entry in shown["remote_engine"])
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demo-models"

    def checkpoint_override(self, mode: str) -> Path | None:
        return getattr(self, f"checkpoint_{mode}")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


# --- parsing ---------------------------------------------------------------


def _choice(choices: tuple[str, ...], *, case_insensitive: bool = True) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        for choice in choices:
            if text == choice or (case_insensitive and text.lower() == choice.lower()):
                return choice
        raise ValueError(f"allowed values: {', '.join(choices)}")

    return parse


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"a whole number from {low} to {high}")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return number

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


def _path(value: Any) -> Path:
    text = str(value).strip()
    if not text:
        raise ValueError("a folder path")
    return Path(text).expanduser()


def _optional_path(value: Any) -> Path | None:
    if value is None or str(value).strip() == "":
        return None
    return _path(value)


def _host(value: Any) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError("a host name or IP address such as 127.0.0.1 or 0.0.0.0")
    return text


def _auth(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    for pair in text.split(","):
        user, sep, password = pair.strip().partition(":")
        if not sep or not user.strip() or not password:
            # The value itself is a secret: never echo it back.
            raise ValueError("user:password (several separated by commas); the value was not shown")
    return text


def _repo_id(value: Any) -> str:
    text = str(value).strip()
    owner, sep, name = text.partition("/")
    if not sep or not owner or not name or "/" in name or any(c.isspace() for c in text):
        raise ValueError("a Hugging Face model id such as openai/whisper-small")
    return text


def _origins(value: Any) -> str | None:
    items = [item.strip().rstrip("/") for item in str(value or "").split(",") if item.strip()]
    for item in items:
        scheme, sep, rest = item.partition("://")
        if item != "*" and (scheme not in ("http", "https") or not sep or not rest or "/" in rest):
            raise ValueError("origins such as https://app.example.com, separated by commas (or *)")
    return ",".join(items) or None


# --- remote engines (--remote-engine URL[#key=SECRET | #key_env=NAME]; core/engine/remote/config.py) ---

_FRAGMENT = re.compile(r"^(?P<name>key|key_env)=(?P<value>.+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    """A list (flags, config.toml) or one comma-separated string (env var)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = [item for item in value.split(",") if item.strip()]
    elif isinstance(value, (list, tuple)):
        items = [str(item) for item in value if str(item).strip()]
    else:
        raise ValueError("URLs (a list in config.toml, comma-separated in the environment)")
    for item in items:
        split_entry(item)  # validates
    return tuple(item.strip() for item in items)


def redact(text: str) -> str:
    """An entry as it may be shown: the inline key (and any user:password@) replaced by ***."""
    url, sep, fragment = str(text).partition("#")
    scheme, found, rest = url.partition("://")
    if found and "@" in rest.split("/", 1)[0]:  # user:password@host: the password must not show either
        url = f"{scheme}://***@{rest.split('@', 1)[1]}"
    if not sep:
        return url
    return f"{url}#key=***" if fragment.strip().startswith("key=") else f"{url}#{fragment}"


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "host": _host,
    "port": _int_range(1, 65535),
    "data_dir": _path,
    "hf_cache_dir": _optional_path,
    "models_dir": _optional_path,
    "checkpoint_voice_design": _optional_path,
    "checkpoint_custom_voice": _optional_path,
    "checkpoint_base": _optional_path,
    "checkpoint_asr": _optional_path,
    "asr_model": _repo_id,
    "auto_transcribe": _bool,
    "device": _choice(DEVICES),
    "dtype": _choice(DTYPES),
    "quantize": _choice(QUANTIZE),
    "decode": _choice(DECODE),
    "engine": _choice(ENGINES),
    "mlx_quantize": _choice(MLX_QUANTIZE),
    "preferred_size": _choice(SIZES),
    "offline": _bool,
    "demo_models": _bool,
    "max_resident": _int_range(1, 8),
    "max_text_chars": _int_range(1, 1_000_000),
    "chunk_chars": _int_range(50, 2_000),
    "log_level": _choice(LOG_LEVELS),
    "auth": _auth,
    "auth_file": _optional_path,
    "insecure_no_auth": _bool,
    "ssl_certfile": _optional_path,
    "ssl_keyfile": _optional_path,
    "max_upload_mb": _int_range(1, 10_000),
    "rate_limit_per_minute": _int_range(0, 100_000),
    "history_max_takes": _int_range(1, 1_000_000),
    "history_max_mb": _int_range(1, 10_000_000),
    "cors_origins": _origins,
    "shutdown_timeout": _int_range(0, 3600),
    "mcp_server": _bool,
    "remote_engine": parse_remote_engines,
    "engine_fallback": _choice(FALLBACKS),
    "remote_timeout": _int_range(1, 86_400),
    "remote_failures": _int_range(1, 100),
    "remote_cooldown": _int_range(1, 3600),
}

SETTING_NAMES = tuple(f.name for f in fields(Settings))
assert set(SETTING_NAMES) == set(_PARSERS), "every setting needs a parser"


def parse_setting(name: str, value: Any, source: str) -> Any:
    if name not in _PARSERS:
        raise SettingsError(f"Unknown setting '{name}' in {source}. Known settings: {', '.join(SETTING_NAMES)}.")
    try:
        return _PARSERS[name](value)
    except ValueError as exc:
        if name == "auth":
            shown = "(hidden)"
        elif name == "remote_engine":  # keys never echo back
            entries = value if isinstance(value, (list, tuple)) else str(value).split(",")
            shown = repr(", ".join(redact(str(e)) for e in entries))
        else:
            shown = repr(value)
        raise SettingsError(f"Invalid value {shown} for setting '{name}' (from {source}); {exc}.") from None


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in _PARSERS:
            # Other tools may share the prefix (e.g. AUTH, handled by the server);
            # unknown keys are ignored rather than fatal for env vars.
            continue
        values[name] = parse_setting(name, raw, f"environment variable {key}")
    return values


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"Could not read the config file {path}: {exc}") from None
    # Allow either top-level keys or a [studio] table.
    table = data.get("studio", data)
    if not isinstance(table, dict):
        raise SettingsError(f"The config file {path} must hold key = value settings.")
    return {
        name: parse_setting(name, value, f"config file {path}")
        for name, value in table.items()
        if not isinstance(value, dict)
    }


def load_settings(
    cli: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Merges the four sources; ``cli`` holds only flags the user actually gave."""
    env = os.environ if env is None else env
    if config_path is None:
        env_config = env.get(ENV_PREFIX + "CONFIG")
        config_path = Path(env_config).expanduser() if env_config else default_config_path()
    merged: dict[str, Any] = {}
    merged.update(_from_file(config_path))
    merged.update(_from_env(env))
    for name, value in (cli or {}).items():
        if value is not None:
            merged[name] = parse_setting(name, value, f"command-line flag --{name.replace('_', '-')}")
    return Settings(**merged)
