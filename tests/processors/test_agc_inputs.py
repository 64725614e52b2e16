"""What ``diffana histograms`` accepts: single ROOT files, coffea filesets, the AGC's file list."""

from __future__ import annotations

import json
import sys

import pytest
import uproot

from diffana.errors import ConfigError, DatasetError, InputFileError, MissingDependencyError
from diffana.processors.inputs import resolve_input


def test_single_root_file_defaults_to_agc_ttbar(real_file):
    fileset = resolve_input(real_file)
    assert fileset == {
        "ttbar__nominal": {
            "files": {real_file: "Events"},
            "metadata": {"process": "ttbar", "variation": "nominal", "xsec": 729.84, "nevts": 200},
        }
    }
    custom = resolve_input(real_file, process="wjets", xsec=2.5, nevts=1000)["wjets__nominal"]
    assert custom["metadata"] == {
        "process": "wjets",
        "variation": "nominal",
        "xsec": 2.5,
        "nevts": 1000,
    }


def test_coffea_fileset_metadata_is_completed(tmp_path, agc_fileset):
    files = list(agc_fileset["wjets__nominal"]["files"])
    path = tmp_path / "fileset.json"
    path.write_text(json.dumps({"wjets__nominal": {"files": files}, "mystery": [files[0]]}))
    with pytest.raises(DatasetError, match="no cross-section for process 'mystery'"):
        resolve_input(path)
    path.write_text(json.dumps({"wjets__nominal": {"files": files}}))
    meta = resolve_input(path)["wjets__nominal"]["metadata"]
    entries = sum(uproot.open(f)["Events"].num_entries for f in files)
    assert meta == {
        "process": "wjets",
        "variation": "nominal",
        "xsec": 61457 * 0.252,
        "nevts": entries,
    }


def test_dataset_folder_reads_its_fileset(agc_dataset, agc_fileset):
    assert resolve_input(agc_dataset) == agc_fileset


def test_agc_file_list_with_max_files(shared):
    path = shared / "oracles/agc-reference/nanoaod_inputs.json"
    inputs = json.loads(path.read_text())
    fileset = resolve_input(path, max_files=2)
    assert len(fileset) == 9
    entry = fileset["ttbar__PS_var"]
    listed = inputs["ttbar"]["PS_var"]["files"][:2]
    assert list(entry["files"]) == [f["path"] for f in listed]
    assert entry["metadata"]["nevts"] == listed[0]["nevts"] + listed[1]["nevts"]
    assert entry["metadata"]["xsec"] == 729.84
    full = resolve_input(path)["wjets__nominal"]
    assert full["metadata"]["nevts"] == inputs["wjets"]["nominal"]["nevts_total"]


def test_root_urls_need_xrootd(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec_xrootd", None)  # as if not installed
    url = "root://eospublic.cern.ch//eos/opendata/cms/x.root"
    with pytest.raises(MissingDependencyError, match=r"pip install 'diffana\[xrootd\]'"):
        resolve_input(url, nevts=10)
    path = tmp_path / "fileset.json"
    meta = {"process": "ttbar", "variation": "nominal", "xsec": 1.0, "nevts": 1}
    path.write_text(json.dumps({"ttbar__nominal": {"files": [url], "metadata": meta}}))
    with pytest.raises(MissingDependencyError, match="XRootD"):
        resolve_input(path)


def test_bad_inputs(tmp_path, agc_dataset):
    with pytest.raises(InputFileError, match="does not exist"):
        resolve_input(tmp_path / "missing.root")
    with pytest.raises(InputFileError, match="cannot read"):
        resolve_input(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        resolve_input(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="--xsec and --nevts describe a single ROOT file"):
        resolve_input(agc_dataset, xsec=1.0)
    with pytest.raises(ConfigError, match="--max-files applies to the AGC's file list"):
        resolve_input(agc_dataset, max_files=1)
