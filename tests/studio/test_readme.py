"""The scripting examples of the README and docs/API.md (gradio_client and openai) run as written
against a real server, and docs/API.md's endpoint table lists exactly the named API."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from studio.api.endpoints import NAMED_API

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
API_DOC = ROOT / "docs" / "API.md"


def client_examples() -> list[str]:
    text = README.read_text(encoding="utf-8") + API_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if "gradio_client" in b or "from openai import" in b]


def test_readme_has_client_examples():
    readme = README.read_text(encoding="utf-8")
    assert "from gradio_client import" in readme and "from openai import" in readme  # the first screen shows both
    examples = client_examples()
    assert len(examples) >= 5
    assert all("http://127.0.0.1:7860/" in e for e in examples)
    assert any("from openai import" in e for e in examples)


def test_readme_examples_run_as_written(studio_server, tmp_path, speech_wav):
    shutil.copy(speech_wav, tmp_path / "my_voice.wav")
    for example in client_examples():
        # Only the address differs: the test server runs on a free port.
        code = example.replace("http://127.0.0.1:7860/", studio_server["url"])
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() or list(tmp_path.glob("*.mp3")), "the example shows what it got"


def endpoint_table_names() -> list[str]:
    """Every endpoint in the first column of docs/API.md's endpoint table (a row may name several)."""
    rows = re.findall(r"^\| (`/[^|]*)\|", API_DOC.read_text(encoding="utf-8"), flags=re.M)
    return [name for row in rows for name in re.findall(r"`(/\w+)`", row)]


def test_readme_endpoint_table_lists_exactly_the_named_api():
    names = endpoint_table_names()
    assert len(names) == len(set(names)), "an endpoint is listed twice"
    assert set(names) == {endpoint.path for endpoint in NAMED_API}
