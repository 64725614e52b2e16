"""``diffana run`` end to end on a tiny synthetic dataset, in process: outputs, resume, scan."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest

import diffana.run as run_module
from diffana.cli import main
from diffana.errors import DatasetError

DEFAULT = Path(__file__).resolve().parents[1] / "workflows" / "agc_ttbar.yaml"
# the tiny dataset is shared with tests/test_notebook.py
SHARED_TMP = Path(tempfile.gettempdir()) / "diffana-tests-run"


def _workflow(folder: Path, steps: int, data: Path) -> Path:
    path = folder / f"tiny_{steps}.yaml"
    path.write_text(
        f"extends: {DEFAULT}\n"
        f"dataset: {{kind: synthetic, folder: {data}, events_per_sample: 20000, files_per_sample: 1, jobs: 1}}\n"
        "cluster: {kind: inprocess}\n"
        # no persistent compilation cache: in CI one read of it, in a background thread while the
        # main thread compiled, aborted the process inside XLA's deserialisation
        "engine: {chunk_size: 50000, compilation_cache: null}\n"
        f"optimizer: {{steps: {steps}, learning_rate: 0.3, hardness: {{schedule: geometric, start: 4.0, end: 8.0}}}}\n"
        "scan: {grid: 2}\n"
    )
    return path


def _interrupt_after(step):
    """A ``diffana.run._step_line`` that presses Ctrl-C once step ``step`` is checkpointed."""
    original = run_module._step_line

    def step_line(*args):
        show = original(*args)

        def interrupting(record):
            show(record)
            if record["step"] == step:
                raise KeyboardInterrupt

        return interrupting

    return step_line


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 4-step run; the same run interrupted after 2 steps and resumed; their result documents."""
    folder = tmp_path_factory.mktemp("run")
    data = SHARED_TMP / "data"
    workflow = str(_workflow(folder, 4, data))
    out = {}
    assert main(["run", workflow, "-o", str(folder / "straight")]) == 0
    out["straight"] = json.loads((folder / "straight" / "result.json").read_text())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_module, "_step_line", _interrupt_after(1))
        assert main(["run", workflow, "-o", str(folder / "resumed")]) == 130
    assert not (folder / "resumed" / "result.json").exists()
    assert main(["run", workflow, "-o", str(folder / "resumed"), "--resume"]) == 0
    out["resumed"] = json.loads((folder / "resumed" / "result.json").read_text())
    out["folder"] = folder
    return out


def test_result_has_the_documented_keys_and_files(runs):
    doc = runs["straight"]
    for key in (
        "initial_params",
        "final_params",
        "objective_initial_hard",
        "objective_final_hard",
        "objective_history",
        "fit",
        "paths",
    ):
        assert key in doc, key
    assert set(doc["initial_params"]) == {"lepton_pt", "jet_pt", "btag"}
    assert doc["initial_params"] == {"lepton_pt": 30.0, "jet_pt": 30.0, "btag": 0.5}
    assert len(doc["objective_history"]) == 4
    assert doc["final_params"] == doc["history"][-1]["params"]
    assert math.isfinite(doc["objective_initial_hard"])
    assert math.isfinite(doc["objective_final_hard"])
    assert doc["fit"]["poi"] == "ttbar_norm"
    assert {"ttbar_norm", "uncertainty"} <= set(doc["fit"])
    paths = doc["paths"]
    for key in ("workspace_initial", "workspace_final", "histograms_final", "checkpoint"):
        assert Path(paths[key]).is_file(), key
    for key in ("stacked_initial", "stacked_final", "trajectories", "soft_vs_hard"):
        assert all(Path(p).is_file() for p in paths[key]), key
    workspace = json.loads(Path(paths["workspace_final"]).read_text())
    assert [c["name"] for c in workspace["channels"]] == ["4j1b CR", "4j2b SR"]


def test_resume_gives_the_same_run(runs):
    straight, resumed = runs["straight"], runs["resumed"]
    assert resumed["history"] == straight["history"]
    assert resumed["final_params"] == straight["final_params"]
    assert resumed["objective_final_hard"] == straight["objective_final_hard"]


def test_dataset_is_reused_and_a_foreign_folder_is_refused(runs, tmp_path, capsys):
    marker = json.loads((SHARED_TMP / "data" / "diffana-dataset.json").read_text())
    assert marker == {"events_per_sample": 20000, "files_per_sample": 1, "seed": 2015}
    other = tmp_path / "other.yaml"
    other.write_text(
        f"extends: {_workflow(tmp_path, 4, SHARED_TMP / 'data')}\n"
        "dataset: {events_per_sample: 7000}\n"
    )
    capsys.readouterr()
    assert main(["run", str(other), "-o", str(tmp_path / "x")]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert f"{DatasetError.__name__}: dataset.folder" in error
    assert "holds a dataset made with" in error
    assert "remove the folder or choose another dataset.folder" in error


def test_scan_reports_the_grid_optimum_and_its_compute(runs):
    folder = runs["folder"]
    assert (
        main(["scan", str(_workflow(folder, 4, SHARED_TMP / "data")), "-o", str(folder / "scan")])
        == 0
    )
    doc = json.loads((folder / "scan" / "scan.json").read_text())
    assert len(doc["points"]) == 8  # 2 points for each of 3 parameters
    assert {p["params"]["jet_pt"] for p in doc["points"]} == {20.0, 60.0}
    finite = [
        p["objective"]
        for p in doc["points"]
        if p["objective"] is not None and math.isfinite(p["objective"])
    ]
    assert doc["best_objective"] == min(finite)
    assert doc["compute"]["passes"] == 8
    assert doc["compute"]["events_evaluated"] > 0
