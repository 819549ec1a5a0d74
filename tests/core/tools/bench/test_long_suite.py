"""bench --long on the tiny real models: the figures exist and the batched chunks are the stock ones."""

from __future__ import annotations

from core.tools.bench import long_suite


def test_long_take_and_variants_figures(demo_context):
    figures = long_suite.measure_long(demo_context, chunks=5, frames=3, variants=3, runs=1)
    report = figures.as_json()
    long_take, variants = report["long_take"], report["variants"]
    assert long_take["chunks"] == 5 and long_take["batches"] == "1+4"
    assert long_take["same_audio"] is True  # every batched chunk equals the stock call alone
    assert long_take["ratio"] == round(figures.studio_s / figures.stock_s, 3) and long_take["goal"] == 0.5
    assert isinstance(long_take["goal_met"], bool)
    assert variants["count"] == 3 and variants["same_as_alone"] is True and variants["goal"] == 2.0
    assert variants["ratio"] == round(figures.variants_s / figures.one_take_s, 3)
