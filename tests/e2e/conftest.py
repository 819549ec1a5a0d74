"""A real studio on the demo models, a real chromium, and a folder for the screenshots.

The server runs in this process on a free localhost port with its own temporary data dir, one per
test module. Chromium is launched once for the whole e2e package (a launch costs seconds on a
2-core machine); every test still gets a fresh page. Package, not session, scope: a live sync
Playwright marks the main thread's event loop as running, which would break ``asyncio.run`` in the
tests that run after the e2e package. Chromium is Debian's (/usr/bin/chromium, installed by
scripts/test.sh); Playwright's own browser download is not used.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest

from tests.conftest import HEADLESS_CHROMIUM_ARGS, free_port, make_demo_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [*HEADLESS_CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
RUN_STARTED = time.time()  # screenshots older than this are a past run's


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory, demo_checkpoints):
    """Starts the studio (a real uvicorn server) and yields its URL and context."""
    from studio.server import serve

    settings = make_demo_settings(tmp_path_factory.mktemp("e2e-data"), demo_checkpoints, port=free_port())
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx, "settings": settings}
    finally:
        app.close()


@pytest.fixture(scope="module")  # module: a module with its own e2e_server gets a client of it
def e2e_client(e2e_server):
    from gradio_client import Client

    return Client(e2e_server["url"], verbose=False)


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory) -> Path:
    """<pytest tmp>/e2e/screenshots; /tmp/e2e-shots (the copy for people) is emptied of old shots.

    Old: made before this run began. Run by pytest-xdist, another worker may have saved
    this run's first shots there already.
    """
    from tests.e2e.browser import HUMAN_SHOTS

    folder = tmp_path_factory.getbasetemp() / "e2e" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    if HUMAN_SHOTS.is_dir():
        for old in HUMAN_SHOTS.glob("*.png"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < RUN_STARTED:
                    old.unlink()
    return folder


@pytest.fixture(params=["desktop", "phone"])
def size(request) -> str:
    return request.param


@pytest.fixture
def studio(browser, e2e_server, size, shots_dir):
    """A fresh page on the studio at desktop (1440x900) or phone (390x844) size."""
    from tests.e2e.browser import Studio

    studio = Studio.open(browser, e2e_server["url"], size, shots_dir)
    try:
        yield studio
    finally:
        studio.page.close()


@pytest.fixture
def long_takes(e2e_server):
    """Chunks of at most 40 characters made one by one, so a take lasts a few seconds and can be
    stopped part-way (the Stop/Resume flows of several modules)."""
    synthesis = e2e_server["ctx"].app.synthesis
    saved = synthesis.chunk_chars, synthesis.batching
    synthesis.chunk_chars, synthesis.batching = 40, False
    yield
    synthesis.chunk_chars, synthesis.batching = saved


# Issue 23: the log of the whole browser suite holds no traceback for an ordinary refusal and no
# HTTP 422 (Gradio refusing a stale event payload). The server runs in this process, so what it
# prints is in each test's captured output: a test whose output holds either fails, at any phase.
LOG_DEFECT = re.compile(r"Traceback \(most recent call last\)|\b422\b.*Unprocessable|HTTP_422|\" 422 ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.passed or item.get_closest_marker("logs_a_real_error"):
        return
    for name, text in report.sections:
        found = LOG_DEFECT.search(text)
        # Sections pile up over a test's phases: only this phase's own output is judged here.
        if found and name.endswith(f" {report.when}"):
            start = max(0, found.start() - 400)
            report.outcome = "failed"
            report.longrepr = f"the server's log ({name}) holds a traceback or a 422:\n{text[start : start + 3000]}"
            return
