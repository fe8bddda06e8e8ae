"""No module of the ``pipeline`` package uses another module's private names.

A leading underscore says "this module's own business": a helper two modules share is made
public where it lives (or moved), so that whoever edits it sees that someone else calls it.
The check reads the source with :mod:`ast` (nothing is imported) and finds
``from pipeline.x import _y``, ``x._y`` on a name bound to a pipeline module (``from
pipeline import x``, ``import pipeline.x as x``, ``x = importlib.import_module("pipeline.x")``)
and ``pipeline.x._y`` after ``import pipeline.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
PACKAGES = {"pipeline", *(f"pipeline.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py"))}


def _private(name: str) -> bool:
    """A private name: one leading underscore, not a dunder (``__file__`` is public)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(node: ast.ImportFrom, here: str) -> str:
    """The absolute module an ``ImportFrom`` reads (relative imports resolved in the package)."""
    if not node.level:
        return node.module or ""
    parts = here.split(".")[: -node.level]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _imported_module(call: ast.expr) -> str | None:
    """``"pipeline.x"`` for ``importlib.import_module("pipeline.x")`` (or ``import_module``)."""
    if not isinstance(call, ast.Call) or not call.args:
        return None
    fn = call.func
    name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
    first = call.args[0]
    if name == "import_module" and isinstance(first, ast.Constant) and \
            isinstance(first.value, str):
        return first.value
    return None


def _dotted(node: ast.expr) -> str | None:
    """``"a.b.c"`` for the attribute chain ``a.b.c``, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def private_uses(source: str, here: str) -> list[str]:
    """Each use, in module ``here`` (e.g. ``pipeline.cli.main``), of another pipeline module's
    private name, as ``"line N: pipeline.x._y"``."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> pipeline module it is bound to
    found = []

    def other(module: str) -> bool:
        return (module == "pipeline" or module.startswith("pipeline.")) and module != here

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _module_of(node, here)
            for alias in node.names:
                if other(module) and _private(alias.name):
                    found.append(f"line {node.lineno}: {module}.{alias.name}")
                if module in PACKAGES:  # from pipeline.pkg import x: x may be a module
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pipeline."):
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Assign) and (module := _imported_module(node.value)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    aliases[target.id] = module
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = _dotted(node.value)
            module = aliases.get(owner or "", owner or "")
            if other(module) and (owner in aliases or module.startswith("pipeline.")):
                found.append(f"line {node.lineno}: {module}.{node.attr}")
    return found


def _dotted_name(path: Path) -> str:
    """``pipeline.scoring.frame`` for ``pipeline/scoring/frame.py``; a package for its __init__."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path: Path):
    here = _dotted_name(path)
    assert private_uses(path.read_text(encoding="utf-8"), here) == []


@pytest.mark.parametrize("source, expected", [
    ("from pipeline.analysis.lift import _check_target",
     ["line 1: pipeline.analysis.lift._check_target"]),
    ("from .model.rules import _interval_label as label",
     ["line 1: pipeline.model.rules._interval_label"]),
    ("from pipeline.registry import store\nstore._client()",
     ["line 2: pipeline.registry.store._client"]),
    ("import pipeline.cli.main as c\nc._console()", ["line 2: pipeline.cli.main._console"]),
    ("import pipeline.cli.main\npipeline.cli.main._console()",
     ["line 2: pipeline.cli.main._console"]),
    ("import importlib\nm = importlib.import_module('pipeline.cli.main')\nm._resolve_model",
     ["line 3: pipeline.cli.main._resolve_model"]),
    ("from pipeline.model.train import train, Analysis", []),  # public names
    ("from pipeline.registry import store\nstore.__file__", []),  # a dunder is public
    ("import threading\nthreading._shutdown()", []),  # not a pipeline module
])
def test_the_check_finds_each_form_of_private_use(source: str, expected: list[str]):
    assert private_uses(source, "pipeline.workflow") == expected


def test_a_modules_own_private_names_are_its_own_business():
    assert private_uses("from pipeline.cli.main import _exit_now\nimport pipeline.cli.main\n"
                        "pipeline.cli.main._DEBUG", "pipeline.cli.main") == []
