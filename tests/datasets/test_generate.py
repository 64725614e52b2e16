"""``diffana generate``: deterministic, independent streams, bad input, nothing half-written."""

from __future__ import annotations

import importlib
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from diffana.cli import main
from diffana.datasets import generate, load_fileset
from diffana.errors import DatasetError

generate_module = importlib.import_module("diffana.datasets.generate")

TWO = ["ttbar__nominal", "wjets__nominal"]


def _arrays(outdir: Path) -> dict[str, ak.Array]:
    return {
        f"{name}/{Path(path).name}": uproot.open(path)["Events"].arrays()
        for name, entry in load_fileset(outdir).items()
        for path in entry["files"]
    }


def _same(a: dict[str, ak.Array], b: dict[str, ak.Array]) -> bool:
    return a.keys() == b.keys() and all(ak.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "a"
    return generate(out, events_per_sample=4000, files_per_sample=2, seed=5, samples=TWO).outdir


def test_same_seed_gives_identical_events(small, tmp_path):
    again = generate(
        tmp_path / "b", events_per_sample=4000, files_per_sample=2, seed=5, samples=TWO
    )
    assert _same(_arrays(small), _arrays(again.outdir))
    assert (small / "fileset.json").read_text() == (again.fileset).read_text()


def test_another_seed_gives_other_events(small, tmp_path):
    other = generate(
        tmp_path / "c", events_per_sample=4000, files_per_sample=2, seed=6, samples=TWO
    )
    assert not _same(_arrays(small), _arrays(other.outdir))


def test_a_dataset_is_the_same_whatever_else_is_generated_and_in_how_many_jobs(small, tmp_path):
    alone = generate(
        tmp_path / "d",
        events_per_sample=4000,
        files_per_sample=2,
        seed=5,
        samples=["wjets__nominal"],
    )
    both = _arrays(small)
    assert _same({k: v for k, v in both.items() if k.startswith("wjets")}, _arrays(alone.outdir))
    parallel = generate(
        tmp_path / "e", events_per_sample=4000, files_per_sample=2, seed=5, samples=TWO, jobs=2
    )
    assert _same(both, _arrays(parallel.outdir))


def test_files_of_a_dataset_hold_different_events(small):
    arrays = _arrays(small)
    a, b = (arrays[f"ttbar__nominal/ttbar__nominal_{k}.root"] for k in (0, 1))
    assert not np.array_equal(ak.to_numpy(a.MET_pt[:100]), ak.to_numpy(b.MET_pt[:100]))
    assert ak.max(a.event) < ak.min(b.event)  # event numbers continue across files


def test_the_command_writes_the_dataset_and_prints_its_summary(tmp_path, capsys, shared):
    reference = shared / "oracles" / "agc-reference" / "histos_all_file_per_process.json"
    code = main(
        [
            "generate",
            str(tmp_path / "cli"),
            "--events-per-sample",
            "3000",
            "--samples",
            *TWO,
            "--files-per-sample",
            "1",
            "--reference",
            str(reference),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "ttbar__nominal" in out
    assert "wjets__nominal" in out
    assert "23,448" in out  # the AGC's 4j1b ttbar yield
    assert (tmp_path / "cli" / "fileset.json").is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events_per_sample": 0}, "--events-per-sample is 0; it must be a positive integer"),
        ({"events_per_sample": -5}, "--events-per-sample is -5"),
        ({"files_per_sample": 0}, "--files-per-sample is 0"),
        ({"jobs": 0}, "--jobs is 0"),
        ({"seed": -1}, "--seed is -1; it must be a non-negative integer"),
        ({"compression": "gzip"}, "--compression is 'gzip'; choose one of lz4, zlib, zstd, none"),
        (
            {"samples": ["tbar__nominal"]},
            "unknown sample 'tbar__nominal'; did you mean ttbar__nominal",
        ),
        ({"samples": []}, "no sample chosen"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace("?", r"\?")):
        generate(tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_outdir_is_refused_and_kept(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="is not empty; choose a new folder"):
        generate(tmp_path / "out", events_per_sample=100, samples=TWO)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_an_outdir_that_cannot_be_written_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(
        DatasetError, match=r"cannot write OUTDIR .*choose a folder you can write to"
    ):
        generate(tmp_path / "file" / "out", events_per_sample=100, samples=TWO)
    with pytest.raises(DatasetError, match="exists and is not a folder"):
        generate(tmp_path / "file", events_per_sample=100, samples=TWO)


def test_an_existing_empty_outdir_is_used(tmp_path):
    (tmp_path / "out").mkdir()
    result = generate(tmp_path / "out", events_per_sample=1000, samples=["ttbar__nominal"])
    assert result.outdir == (tmp_path / "out").absolute()
    assert load_fileset(tmp_path / "out")["ttbar__nominal"]["metadata"]["nevts"] == 1000


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_no_half_written_dataset(tmp_path, monkeypatch, error):
    real_write = generate_module.write_events
    calls = []

    def failing_write(path, cols, compression):
        calls.append(path)
        if len(calls) == 2:
            raise error
        real_write(path, cols, compression)

    monkeypatch.setattr(generate_module, "write_events", failing_write)
    with pytest.raises(type(error)):
        generate(tmp_path / "out", events_per_sample=1000, samples=TWO)
    assert list(tmp_path.iterdir()) == []  # neither OUTDIR nor its temporary folder


def test_the_command_reports_bad_input_without_a_traceback(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    assert main(["generate", str(tmp_path / "out")]) == 2
    assert "DatasetError" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "new"), "--samples", "wjet"]) == 2
    assert "did you mean wjets__nominal" in capsys.readouterr().err


def test_the_help_states_the_defaults_generate_uses(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {generate_module.DEFAULT_EVENTS})" in text
    assert f"(default {generate_module.DEFAULT_FILES})" in text
    assert f"(default {generate_module.DEFAULT_SEED})" in text
