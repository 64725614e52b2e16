"""The notebook workflows/agc_ttbar.ipynb runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "workflows" / "agc_ttbar.ipynb"
# the tiny dataset is shared with tests/test_run.py
SHARED_TMP = Path(tempfile.gettempdir()) / "diffana-tests-run"


def test_notebook_optimises_the_cuts_on_a_tiny_dataset(monkeypatch):
    monkeypatch.setenv("DIFFANA_NOTEBOOK_EVENTS", "20000")
    monkeypatch.setenv("DIFFANA_NOTEBOOK_STEPS", "3")
    monkeypatch.setenv("DIFFANA_NOTEBOOK_LINE_POINTS", "2")
    monkeypatch.setenv("DIFFANA_NOTEBOOK_DATA", str(SHARED_TMP / "data"))
    monkeypatch.setenv("DIFFANA_NOTEBOOK_CLUSTER", "inprocess")
    # the kernel is this Python (its ipykernel), and JAX in it on one thread as in the tests
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [
        o
        for o in outputs
        if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})
    ]
    assert len(images) >= 4  # hard lines, trajectories, soft vs hard, stacked histograms
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    summary = json.loads(text.strip().splitlines()[-1])
    assert summary["steps"] == 3
    assert summary["initial_params"] == {"lepton_pt": 30.0, "jet_pt": 30.0, "btag": 0.5}
    assert set(summary["final_params"]) == set(summary["initial_params"])
    assert math.isfinite(summary["objective_initial_hard"])
    assert math.isfinite(summary["objective_final_hard"])
    assert summary["objective_final_hard"] <= summary["objective_gradient_hard"] * (1 + 1e-9)
    assert summary["fit"]["poi"] == "ttbar_norm"
