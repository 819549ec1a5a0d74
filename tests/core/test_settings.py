from pathlib import Path

import pytest

from core.errors import SettingsError
from core.settings import Settings, default_data_dir, load_settings


def test_defaults_when_nothing_is_set(tmp_path):
    s = load_settings({}, env={}, config_path=tmp_path / "missing.toml")
    assert s == Settings()
    assert s.host == "127.0.0.1" and s.port == 7860
    assert s.max_resident == 1
    assert "qwen-tts-studio" in str(default_data_dir())


def test_precedence_cli_over_env_over_file_over_default(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('port = 8000\ndevice = "cpu"\ndtype = "float32"\nmax_resident = 2\n')
    env = {"QWEN_TTS_STUDIO_PORT": "8100", "QWEN_TTS_STUDIO_DEVICE": "cuda"}
    s = load_settings({"port": "8200"}, env=env, config_path=config)
    assert s.port == 8200  # CLI wins
    assert s.device == "cuda"  # env beats file
    assert s.dtype == "float32"  # file beats default
    assert s.max_resident == 2
    assert s.preferred_size == "1.7B"  # default


def test_config_file_may_use_a_studio_table_and_paths_expand(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[studio]\ndata_dir = "~/voices-data"\ndemo_models = true\n')
    s = load_settings({}, env={}, config_path=config)
    assert s.data_dir == Path("~/voices-data").expanduser()
    assert s.demo_models is True


def test_env_config_path_and_booleans(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("offline = true\n")
    s = load_settings({}, env={"QWEN_TTS_STUDIO_CONFIG": str(config), "QWEN_TTS_STUDIO_DEMO_MODELS": "yes"})
    assert s.offline is True and s.demo_models is True


@pytest.mark.parametrize(
    "cli, words",
    [
        ({"device": "tpu"}, ["'device'", "auto, cuda, mps, cpu"]),
        ({"dtype": "int4"}, ["'dtype'", "bfloat16, float16, float32"]),
        ({"port": "70000"}, ["'port'", "1 to 65535"]),
        ({"port": "abc"}, ["'port'", "whole number"]),
        ({"preferred_size": "7B"}, ["'preferred_size'", "0.6B, 1.7B"]),
        ({"max_resident": "0"}, ["'max_resident'", "1 to 8"]),
    ],
)
def test_invalid_values_name_the_setting_and_allowed_values(cli, words, tmp_path):
    with pytest.raises(SettingsError) as info:
        load_settings(cli, env={}, config_path=tmp_path / "none.toml")
    message = str(info.value)
    for word in words:
        assert word in message
    assert "command-line flag" in message


def test_invalid_env_value_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="QWEN_TTS_STUDIO_DTYPE"):
        load_settings({}, env={"QWEN_TTS_STUDIO_DTYPE": "fp8"}, config_path=tmp_path / "x.toml")


def test_bad_config_file_is_reported(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("port = [")
    with pytest.raises(SettingsError, match="config file"):
        load_settings({}, env={}, config_path=config)
    config.write_text("colour = 'blue'\n")
    with pytest.raises(SettingsError, match="Unknown setting 'colour'"):
        load_settings({}, env={}, config_path=config)


def test_case_insensitive_choices(tmp_path):
    s = load_settings({"device": "CPU", "preferred_size": "0.6b"}, env={}, config_path=tmp_path / "n.toml")
    assert s.device == "cpu" and s.preferred_size == "0.6B"


def test_transcription_settings(tmp_path):
    """--asr-model, --checkpoint-asr and --auto-transcribe (docs/ASR.md), from flags, env and file."""
    nothing = tmp_path / "none.toml"
    defaults = load_settings({}, env={}, config_path=nothing)
    assert (defaults.asr_model, defaults.checkpoint_asr, defaults.auto_transcribe) == (
        "openai/whisper-small",
        None,
        False,
    )
    chosen = load_settings(
        {"asr_model": "openai/whisper-large-v3-turbo", "checkpoint_asr": str(tmp_path / "w")},
        env={"QWEN_TTS_STUDIO_AUTO_TRANSCRIBE": "yes"},
        config_path=nothing,
    )
    assert chosen.asr_model == "openai/whisper-large-v3-turbo"
    assert chosen.checkpoint_asr == tmp_path / "w"
    assert chosen.checkpoint_override("asr") == tmp_path / "w"
    assert chosen.auto_transcribe is True
    with pytest.raises(SettingsError, match="'asr_model'.*a Hugging Face model id such as openai/whisper-small"):
        load_settings({"asr_model": "whisper small"}, env={}, config_path=nothing)


def test_transcription_flags_on_the_command_line(tmp_path):
    from studio.cli.main import build_parser

    args = build_parser().parse_args(
        ["serve", "--auto-transcribe", "--asr-model", "openai/whisper-base", "--checkpoint-asr", str(tmp_path)]
    )
    assert (args.auto_transcribe, args.asr_model, args.checkpoint_asr) == (True, "openai/whisper-base", str(tmp_path))
