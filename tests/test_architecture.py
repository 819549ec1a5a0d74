"""docs/ARCHITECTURE.md stays true, and the layering rules it states hold in the code.

Static checks, read from the source files: they run in a second and need no
model. (That importing storage loads no torch at *run time* is checked by
tests/core/storage/test_no_torch.py, in fresh interpreters.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
MAX_MODULE_LINES = 700

# `core/engine/synthesis.py`, `studio/ui/tabs/` and the like, wherever the doc names them
# (not the tail of another path, such as tests/core/...).
_PATH = re.compile(r"(?<![\w/.])((?:core|studio)/(?:\w+/)*(?:\w+\.py\b)?)")


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported(path: Path, *, top_level_only: bool = False) -> list[str]:
    """Every module ``path`` imports; with ``top_level_only``, those an ``import`` of it runs.

    Imports inside functions and under ``if TYPE_CHECKING:`` do not run at import time.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if top_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit_all(child.orelse)
                continue
            if isinstance(child, ast.Import):
                names.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                names.append(child.module)
            visit(child)

    def visit_all(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            visit(ast.Module(body=[node], type_ignores=[]))

    visit(tree)
    return names


def root_of(name: str) -> str:
    return name.split(".", 1)[0]


def test_every_path_the_architecture_doc_names_exists():
    text = DOC.read_text(encoding="utf-8")
    named = sorted(set(_PATH.findall(text)))
    assert len(named) > 40, "the doc should map the packages module by module"
    missing = [path for path in named if not (ROOT / path).exists()]
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_core_and_studio_module_is_in_the_architecture_doc():
    """A new module gets a line in the map (or is named on its folder's line)."""
    text = DOC.read_text(encoding="utf-8")
    named = set(_PATH.findall(text))
    folders = {path for path in named if path.endswith("/")}

    def mapped(path: Path) -> bool:
        # Named in full, or by its file name on the line of a folder that holds it.
        if rel(path) in named:
            return True
        return any(
            rel(path).startswith(folder) and re.search(rf"`{folder}`[^\n]*\b{re.escape(path.name)}\b", text)
            for folder in folders
        )

    unmapped = [
        rel(path)
        for package in ("core", "studio")
        for path in modules(package)
        if path.name not in ("__init__.py", "__main__.py") and not mapped(path)
    ]
    assert not unmapped, f"add these modules to the package map in docs/ARCHITECTURE.md: {unmapped}"


@pytest.mark.parametrize("package", ["core", "studio"])
def test_no_module_is_over_700_lines(package):
    long = {rel(p): n for p in modules(package) if (n := len(p.read_text(encoding="utf-8").splitlines())) > 700}
    assert not long, f"split these modules (at most {MAX_MODULE_LINES} lines each): {long}"


def test_core_never_imports_gradio_or_studio():
    """The dependency points one way: studio -> core. Not even a lazy import inside a function."""
    offenders = {
        rel(path): bad
        for path in modules("core")
        if (bad := sorted({n for n in imported(path) if root_of(n) in ("gradio", "gradio_client", "studio")}))
    }
    assert not offenders, offenders


def test_the_openai_routes_import_core_only_never_gradio():
    files = [ROOT / "studio" / "api" / "openai_routes.py", *modules("studio/api/openai")]
    offenders = {
        rel(path): bad
        for path in files
        if (
            bad := sorted(
                {n for n in imported(path) if root_of(n) == "gradio" or n.startswith(("studio.ui", "studio.cli"))}
            )
        )
    }
    assert not offenders, offenders


def test_storage_and_types_import_no_torch_gradio_or_model_code_when_imported():
    heavy = {"torch", "torchaudio", "qwen_tts", "transformers", "gradio"}
    files = [ROOT / "core" / "types.py", *modules("core/storage")]
    offenders = {
        rel(path): bad
        for path in files
        if (bad := sorted({n for n in imported(path, top_level_only=True) if root_of(n) in heavy}))
    }
    assert not offenders, offenders


def test_the_import_scanner_sees_lazy_and_type_checking_imports():
    """The checks above are only as good as ``imported``: prove it on a known file."""
    types_py = ROOT / "core" / "types.py"
    assert "torch" in imported(types_py)  # under TYPE_CHECKING
    assert "qwen_tts.inference.qwen3_tts_model" in imported(types_py)  # inside a method
    assert "torch" not in imported(types_py, top_level_only=True)
    assert "numpy" in imported(types_py, top_level_only=True)


def test_every_engine_subclasses_the_engine_protocol():
    """A class that generates (``generate_batch``) is an engine: it subclasses ``Engine``, so mypy
    (scripts/check.sh) checks it against the protocol (core/engine/interface.py)."""
    engines: dict[str, list[str]] = {}
    for path in modules("core"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(item, ast.FunctionDef) and item.name == "generate_batch" for item in node.body
            ):
                engines[f"{rel(path)}:{node.name}"] = [ast.unparse(base) for base in node.bases]
    assert {"core/engine/torch_engine.py:TorchEngine", "core/engine/remote/router.py:EngineRouter"} <= set(engines)
    assert len(engines) >= 4, engines
    offenders = {name: bases for name, bases in engines.items() if bases not in (["Engine"], ["Protocol"])}
    assert not offenders, f"engines that do not subclass Engine: {offenders}"


def test_nothing_reaches_an_engine_member_by_name():
    """Capabilities are protocol members, never ``getattr(engine, "...")``."""
    pattern = re.compile(r"getattr\([^)]*engine", re.IGNORECASE)
    offenders = [
        f"{rel(path)}:{number}"
        for package in ("core", "studio")
        for path in modules(package)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
