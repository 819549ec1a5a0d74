"""Issue 16: the MLX engine in a real browser -- the Models tab shows the engine and switches it,
and a Custom Voice take is made by the real mlx-audio child (MLX's CPU backend here).

Leaves mlx-engine-<size>.png in the screenshot folder (and /tmp/e2e-shots/).
"""

from __future__ import annotations

import pytest

from tests.conftest import free_port, make_demo_settings
from tests.e2e.conftest import CHROMIUM
from tests.mlx_engine import link_engine, mlx_engine_home  # noqa: F401 (fixture)

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory, demo_checkpoints, mlx_engine_home):  # noqa: F811
    """The studio on the MLX engine (overrides tests/e2e/conftest.py's torch server)."""
    from studio.server import serve

    data_dir = link_engine(tmp_path_factory.mktemp("e2e-mlx") / "data", mlx_engine_home)
    settings = make_demo_settings(data_dir, demo_checkpoints, port=free_port(), engine="mlx")
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx, "settings": settings}
    finally:
        app.close()
        process = getattr(ctx.app.synthesis.engine, "process", None)
        if process is not None:
            process.stop()


# Desktop only: switching engines starts the mlx-audio child twice (about 2 minutes a run on CI's
# 2 cores), and the Models tab's phone layout is covered by the other flows (issue 22, CI time).
@pytest.mark.parametrize("size", ["desktop"])
def test_models_tab_shows_and_switches_the_engine_and_takes_use_it(studio, size, e2e_server):
    page = studio.page
    synthesis = e2e_server["ctx"].app.synthesis
    studio.tab("Models")
    device = page.locator("#models-device")
    expect(device).to_contain_text("Engine: mlx")

    # Switch to torch and back, from the tab, without editing any file.
    studio.choose("models-engine", "torch")
    page.locator("#models-engine-switch").click()
    expect(device).to_contain_text("Engine: torch", timeout=60_000)
    assert synthesis.engine.name == "torch"
    studio.choose("models-engine", "mlx")
    studio.choose("models-mlx-quantize", "4bit")  # the child quantizes at load (--mlx-quantize)
    page.locator("#models-engine-switch").click()
    expect(device).to_contain_text("Engine: mlx (4bit)", timeout=60_000)
    expect(page.get_by_text("Takes now use the mlx engine with 4bit weights")).to_be_visible()
    assert synthesis.engine.name == "mlx" and synthesis.engine.weights == "4bit"

    studio.tab("Custom Voice")
    studio.fill("custom-text", f"Made by the MLX engine, {size} run.")
    studio.choose("custom-speaker", "Ryan")
    studio.set_max_length()
    summary = studio.generate("custom")
    assert "CustomVoice" in summary, summary
    studio.assert_has_audio("custom-audio")
    assert synthesis.engine.process.pid is not None, "the take ran in the MLX child"
    assert synthesis.engine.process.memory()["quantize"] == "4bit"
    assert e2e_server["ctx"].app.history.list()[0].engine == "mlx 4bit"

    studio.tab("Models")
    studio.shoot(
        "mlx-engine",
        {
            "engine line": device,
            "engine choice": studio.field("models-engine"),
            "MLX weights": studio.field("models-mlx-quantize"),
            "switch button": page.locator("#models-engine-switch"),
        },
    )
