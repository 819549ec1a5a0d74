import pytest

from core.engine.catalog import REAL_CHECKPOINTS, Catalog, real_checkpoint
from core.errors import InvalidInput
from core.types import Mode


def test_real_catalog_has_the_five_checkpoints():
    catalog = Catalog(demo=False)
    assert {c.repo_id for c in catalog} == {
        "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign",
        "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
        "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
        "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
        "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
    }
    assert catalog.sizes("design") == ["1.7B"]
    assert sorted(catalog.sizes("clone")) == ["0.6B", "1.7B"]


def test_voice_design_only_at_17b():
    catalog = Catalog(demo=False)
    assert catalog.resolve("design", None, preferred_size="0.6B").size == "1.7B"
    with pytest.raises(InvalidInput, match="no 0.6B model"):
        catalog.resolve("design", "0.6B")


def test_instruct_support_is_reported_per_checkpoint():
    by_key = {c.key: c for c in REAL_CHECKPOINTS}
    assert by_key["0.6B-CustomVoice"].supports_instruct is False
    assert by_key["1.7B-CustomVoice"].supports_instruct is True


def test_demo_catalog_mirrors_real_sizes_and_accepts_real_keys():
    demo = Catalog(demo=True)
    assert all(c.demo for c in demo)
    assert [(c.mode, c.size) for c in demo] == [(c.mode, c.size) for c in REAL_CHECKPOINTS]
    assert demo.get("0.6B-Base").key == "demo-0.6B-Base"
    assert Catalog(demo=False).get("Qwen/Qwen3-TTS-12Hz-0.6B-Base").key == "0.6B-Base"


def test_unknown_keys_and_modes_are_clear():
    with pytest.raises(InvalidInput, match="Known models"):
        Catalog(demo=False).get("2B-Magic")
    with pytest.raises(InvalidInput, match="design, custom or clone"):
        Mode.from_user("sing")
    with pytest.raises(InvalidInput, match="Unknown mode 'sing'"):
        Catalog(demo=False).sizes("sing")


@pytest.mark.parametrize(
    "model_id, key",
    [
        ("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", "1.7B-CustomVoice"),
        ("Qwen3-TTS-12Hz-0.6B-Base", "0.6B-Base"),
        ("mlx-community/Qwen3-TTS-12Hz-1.7B-CustomVoice-bf16", "1.7B-CustomVoice"),
        ("mlx-community/Qwen3-TTS-12Hz-1.7B-Base-6bit", "1.7B-Base"),
        ("mlx-community/Qwen3-TTS-12Hz-0.6B-Base-4bit", "0.6B-Base"),
        ("mlx-community/Qwen3-TTS-12Hz-1.7B-VoiceDesign-8bit", "1.7B-VoiceDesign"),
        ("someone/Qwen3-TTS-12Hz-1.7B-Base", None),  # another publisher's repo is not ours to vouch for
        ("Qwen/Qwen3-TTS-12Hz-1.7B-Base-6bit", None),  # Qwen publishes no quantized names
        ("mlx-community/Qwen3-TTS-12Hz-9B-Base-4bit", None),
    ],
)
def test_real_checkpoint_reads_qwen_and_mlx_community_ids(model_id, key):
    found = real_checkpoint(model_id)
    assert (found.key if found else None) == key
    if key:  # and the catalog resolves them, in demo mode to the demo mirror
        assert Catalog(demo=True).get(model_id).key == f"demo-{key}"
