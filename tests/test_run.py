"""``diffana run`` end to end on a tiny synthetic dataset: outputs, Ctrl-C and resume, scan.

Each run is the command line in a process of its own, as a physicist starts it. (In the pytest
process, after the rest of the suite, these runs used to crash inside XLA: the process had passed
the kernel's limit on memory mappings with the suite's compiled programs; see tests/conftest.py.)
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

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
        "engine: {chunk_size: 50000, compilation_cache: null}\n"
        f"optimizer: {{steps: {steps}, learning_rate: 0.3, hardness: {{schedule: geometric, start: 4.0, end: 8.0}},"
        " polish: {points: 2, sweeps: 2}}\n"
        "scan: {grid: 2}\n"
    )
    return path


def _diffana(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "diffana", *args], capture_output=True, text=True, timeout=900
    )


def _interrupted_run(workflow: Path, out: Path, after_steps: int) -> int:
    """Start ``diffana run``, press Ctrl-C once ``after_steps`` steps are checkpointed; its exit code."""
    checkpoint = out / "checkpoint.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "diffana", "run", str(workflow), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 900
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(checkpoint.read_text())["step"] >= after_steps:
                process.send_signal(signal.SIGINT)
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    return process.wait(timeout=900)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 4-step run; the same run interrupted after 2 steps and resumed; their result documents."""
    folder = tmp_path_factory.mktemp("run")
    data = SHARED_TMP / "data"
    workflow = _workflow(folder, 4, data)
    out = {}
    done = _diffana("run", str(workflow), "-o", str(folder / "straight"))
    assert done.returncode == 0, done.stderr
    out["straight"] = json.loads((folder / "straight" / "result.json").read_text())
    assert _interrupted_run(workflow, folder / "resumed", after_steps=2) == 130
    assert not (folder / "resumed" / "result.json").exists()
    done = _diffana("run", str(workflow), "-o", str(folder / "resumed"), "--resume")
    assert done.returncode == 0, done.stderr
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
    assert doc["gradient_params"] == doc["history"][-1]["params"]
    assert math.isfinite(doc["objective_initial_hard"])
    assert math.isfinite(doc["objective_final_hard"])
    # the hard lines start at the gradient's point and end at the final one, the best they saw
    polish = doc["polish"]
    assert polish["start_params"] == doc["gradient_params"]
    assert polish["params"] == doc["final_params"]
    assert polish["start_objective"] == pytest.approx(doc["objective_gradient_hard"], rel=1e-12)
    seen = [v for line in polish["lines"] for v in line["objective"] if math.isfinite(v)]
    assert doc["objective_final_hard"] == pytest.approx(min(seen), rel=1e-9)
    assert doc["objective_final_hard"] <= doc["objective_gradient_hard"] * (1 + 1e-9)
    first = polish["lines"][:3]
    assert [line["parameter"] for line in first] == ["lepton_pt", "jet_pt", "btag"]
    assert {20.0, 60.0} <= set(first[0]["values"])
    assert {0.2, 0.9} <= set(first[2]["values"])
    assert len(polish["lines"]) in (3, 6)  # a second sweep only if the first moved
    at = first[0]["values"].index(doc["gradient_params"]["lepton_pt"])
    assert first[0]["objective"][at] == polish["start_objective"]
    assert doc["fit"]["poi"] == "ttbar_norm"
    assert {"ttbar_norm", "uncertainty"} <= set(doc["fit"])
    paths = doc["paths"]
    for key in ("workspace_initial", "workspace_final", "histograms_final", "checkpoint"):
        assert Path(paths[key]).is_file(), key
    for key in ("stacked_initial", "stacked_final", "trajectories", "soft_vs_hard", "polish"):
        assert all(Path(p).is_file() for p in paths[key]), key
    workspace = json.loads(Path(paths["workspace_final"]).read_text())
    assert [c["name"] for c in workspace["channels"]] == ["4j1b CR", "4j2b SR"]


def test_resume_gives_the_same_run(runs):
    straight, resumed = runs["straight"], runs["resumed"]
    assert resumed["history"] == straight["history"]
    assert resumed["final_params"] == straight["final_params"]
    assert resumed["objective_final_hard"] == straight["objective_final_hard"]


def test_dataset_is_reused_and_a_foreign_folder_is_refused(runs, tmp_path):
    marker = json.loads((SHARED_TMP / "data" / "diffana-dataset.json").read_text())
    assert marker == {"events_per_sample": 20000, "files_per_sample": 1, "seed": 2015}
    other = tmp_path / "other.yaml"
    other.write_text(
        f"extends: {_workflow(tmp_path, 4, SHARED_TMP / 'data')}\n"
        "dataset: {events_per_sample: 7000}\n"
    )
    done = _diffana("run", str(other), "-o", str(tmp_path / "x"))
    assert done.returncode == 2
    error = " ".join(done.stderr.split())
    assert f"{DatasetError.__name__}: dataset.folder" in error
    assert "holds a dataset made with" in error
    assert "remove the folder or choose another dataset.folder" in error


def test_scan_reports_the_grid_optimum_and_its_compute(runs):
    folder = runs["folder"]
    done = _diffana(
        "scan", str(_workflow(folder, 4, SHARED_TMP / "data")), "-o", str(folder / "scan")
    )
    assert done.returncode == 0, done.stderr
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
