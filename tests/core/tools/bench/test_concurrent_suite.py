"""bench --long's concurrent-requests figure on the tiny real models."""

from __future__ import annotations

from core.tools.bench import concurrent_suite


def test_concurrent_requests_figure(demo_context):
    figures = concurrent_suite.measure_concurrent(demo_context, requests=3, frames=3, runs=1)
    report = figures.as_json()
    assert report["requests"] == 3 and report["same_audio"] is True  # each take equals the take alone
    assert report["ratio"] == round(figures.together_s / figures.sequential_s, 3)
    assert report["sequential_s"] > 0 and report["together_s"] > 0 and report["queued_alone_s"] > 0
    assert report["sequential_cpu_s"] > 0 and report["cpu_ratio"] == round(
        figures.together_cpu_s / figures.sequential_cpu_s, 3
    )
    # Three jobs queued at once: the runner serves them together (and alone when batching is off).
    assert report["served_together"] == 3
