"""MLX batches for real: a long take's chunks and variants through mlx-audio's own
``batch_generate`` in the child (``POST /studio/batch``), on the tiny demo checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from core.context import build_context
from core.engine.mlx.engine import BATCH_SEED_NOTE, MlxEngine
from core.types import CustomVoiceRequest, Sampling
from tests.conftest import make_demo_settings
from tests.mlx_engine import link_engine

CAP = 24  # frames per chunk: 12.5 frames a second, so at most ~1.9 s a chunk


@pytest.fixture(scope="module")
def batch_context(tmp_path_factory, demo_checkpoints, mlx_engine_home):
    data_dir = link_engine(tmp_path_factory.mktemp("mlx-batch") / "data", mlx_engine_home)
    settings = make_demo_settings(data_dir, demo_checkpoints, engine="mlx")
    context = build_context(settings)
    assert isinstance(context.synthesis.engine, MlxEngine)
    context.synthesis.chunk_chars = 60  # three chunks from the text below
    yield context
    context.synthesis.engine.process.stop()


TEXT = (
    "The first chunk goes alone so that audio starts early. "
    "The second chunk and the third are generated together. "
    "This third chunk shares their batch in the MLX child."
)


def _valid(audio, chunks: int) -> None:
    samples = audio.samples
    assert audio.sample_rate == 24_000 and samples.dtype == np.float32 and np.all(np.isfinite(samples))
    assert float(np.abs(samples).max()) > 1e-3
    # each chunk made at least 2 frames (0.16 s) and at most CAP frames, plus the pauses between
    assert 0.16 * chunks <= audio.duration <= chunks * (CAP / 12.5 + 0.5)


def test_a_long_take_batches_its_later_chunks_and_says_seeds_were_not_applied(batch_context, caplog):
    synthesis = batch_context.synthesis
    request = CustomVoiceRequest(text=TEXT, speaker="Vivian", sampling=Sampling(seed=11, max_new_tokens=CAP))
    with caplog.at_level("INFO", logger="core.engine.synthesis"):
        take = synthesis.synthesize(request)
    assert len(take.chunks) == 3
    assert take.engine == "mlx"
    _valid(take.audio, 3)
    assert any("batches=2" in r.getMessage() for r in caplog.records), "chunks 2-3 went in one batch"
    assert BATCH_SEED_NOTE in take.warnings
    assert [p.seed for p in take.parts] == [11, 12, 13], "each part still records its chunk's seed"
    assert all(p.audio.duration >= 0.16 for p in take.parts)
    again = synthesis.synthesize(request)
    assert np.array_equal(take.audio.samples, again.audio.samples), "the take's seed makes the take again"

    single = synthesis.synthesize(
        CustomVoiceRequest(text="One short chunk.", speaker="Vivian", sampling=Sampling(seed=11, max_new_tokens=CAP))
    )
    assert BATCH_SEED_NOTE not in single.warnings, "a take with no batch keeps its seeds"


def test_variants_run_through_batch_generate(batch_context):
    synthesis = batch_context.synthesis
    request = CustomVoiceRequest(
        text="Two takes of one line.", speaker="Ryan", sampling=Sampling(seed=5, max_new_tokens=CAP)
    )
    takes = synthesis.variants(request, 2)
    assert [t.seed for t in takes] == [5, 6]
    for take in takes:
        assert take.engine == "mlx" and BATCH_SEED_NOTE in take.warnings
        _valid(take.audio, 1)
    assert not np.array_equal(takes[0].audio.samples, takes[1].audio.samples), "two takes, two sounds"
