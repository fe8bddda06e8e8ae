"""The notebooks run top to bottom without error, on the venv's own Python, and ship stripped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
KERNEL = "lead-scoring-venv"


def test_the_three_notebooks_exist_and_are_stripped() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_explore_lift.ipynb", "02_points_review.ipynb",
                                           "03_score_and_export.ipynb"]
    for path in NOTEBOOKS:
        book = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in book["cells"] if c["cell_type"] == "code"]
        assert code, f"{path.name} has no code"
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), \
            f"{path.name}: outputs are committed (strip them)"
        assert any("import pipeline" in "".join(c["source"]) or "from pipeline" in
                   "".join(c["source"]) for c in code), f"{path.name} does not use the package"
        text = "".join("".join(c["source"]) for c in code)
        assert "models/" not in text, f"{path.name} must not write into the repository's models/"


@pytest.fixture
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec whose argv is this interpreter, so the kernel imports this venv's pipeline
    (the stock ``python3`` spec runs whatever ``python`` is first on PATH)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lead-scoring venv", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:jupyter_client.*")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:zmq.*")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, venv_kernel: str, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, timeout=300, kernel_name=venv_kernel,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    code = [c for c in book.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert all(c.execution_count is not None for c in code)
    shown = [o for c in code for o in c.outputs
             if o.output_type in ("display_data", "execute_result")]
    assert shown, f"{path.name} displayed nothing"
    # the original file stays stripped: executing never writes back
    assert all(c["outputs"] == [] for c in json.loads(path.read_text())["cells"]
               if c["cell_type"] == "code")
