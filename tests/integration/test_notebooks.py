"""Every notebook runs top to bottom against the project's packages."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, trained, demo_path, monkeypatch, tmp_path):
    settings, _ = trained
    monkeypatch.setenv("NPSRISK_DEMO_DATA", str(demo_path))
    monkeypatch.setenv("NPSRISK_HOME", str(settings.home))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("churn probability" in o.get("text", "") for o in outputs)
