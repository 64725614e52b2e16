"""The generated files are NanoAOD as the AGC's real files are, and the fileset is coffea's."""

from __future__ import annotations

import json

import awkward as ak
import dask
import dask_awkward as dak
import numpy as np
import pytest
import uproot
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from diffana.datasets import SAMPLES

pytestmark = [pytest.mark.filterwarnings("ignore:Missing cross-reference:RuntimeWarning")]

# the branches of the real file the synthetic files must reproduce exactly (name and dtype)
AGC_BRANCHES = [
    "nJet",
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_mass",
    "Jet_btagCSVV2",
    "Jet_jetId",
    "Jet_hadronFlavour",
    "nElectron",
    "Electron_pt",
    "Electron_eta",
    "Electron_phi",
    "Electron_mass",
    "Electron_cutBased",
    "Electron_sip3d",
    "Electron_charge",
    "nMuon",
    "Muon_pt",
    "Muon_eta",
    "Muon_phi",
    "Muon_mass",
    "Muon_tightId",
    "Muon_sip3d",
    "Muon_pfRelIso04_all",
    "Muon_charge",
    "genWeight",
    "run",
    "luminosityBlock",
    "event",
    "MET_pt",
    "MET_phi",
    "PV_npvs",
    "PV_x",
    "PV_y",
    "PV_z",
]


def _first_file(dataset, name="ttbar__nominal") -> str:
    fileset = json.loads((dataset / "fileset.json").read_text())
    return str(dataset / next(iter(fileset[name]["files"])))


def test_fileset_is_coffeas_format_with_the_agc_names_and_metadata(dataset):
    fileset = json.loads((dataset / "fileset.json").read_text())
    assert sorted(fileset) == sorted(SAMPLES)
    for name, entry in fileset.items():
        process, variation = name.split("__")
        assert set(entry) == {"files", "metadata"}
        assert set(entry["metadata"]) == {"process", "variation", "xsec", "nevts"}
        assert (entry["metadata"]["process"], entry["metadata"]["variation"]) == (
            process,
            variation,
        )
        assert all(tree == "Events" for tree in entry["files"].values())
        assert all((dataset / path).is_file() for path in entry["files"])
        nevts = entry["metadata"]["nevts"]
        assert nevts == round(SAMPLES[name].size * 300_000)
        # nevts counts generated events; the files hold the preselected ones
        written = sum(uproot.open(dataset / p)["Events"].num_entries for p in entry["files"])
        assert 0 < written < nevts
    # cross-sections of the AGC (AGC.md)
    xsec = {k: v["metadata"]["xsec"] for k, v in fileset.items()}
    assert xsec["ttbar__ME_var"] == xsec["ttbar__nominal"] == 729.84
    assert xsec["wjets__nominal"] == pytest.approx(61457 * 0.252)
    assert xsec["single_top_t_chan__nominal"] == pytest.approx((36.993 + 22.175) / 0.252)
    assert xsec["single_top_s_chan__nominal"] == 3.2944
    assert xsec["single_top_tW__nominal"] == 75.842


def test_branch_dtypes_and_jaggedness_match_the_real_file(dataset, real_file):
    real = uproot.open(real_file)["Events"]
    mine = uproot.open(_first_file(dataset))["Events"]
    for name in AGC_BRANCHES:
        assert str(mine[name].interpretation) == str(real[name].interpretation), name
    arrays = mine.arrays(AGC_BRANCHES)
    for collection in ("Jet", "Electron", "Muon"):
        counts = ak.to_numpy(arrays[f"n{collection}"])
        assert counts.dtype == np.uint32
        for branch in AGC_BRANCHES:
            if branch.startswith(f"{collection}_"):
                assert np.array_equal(ak.to_numpy(ak.num(arrays[branch])), counts), branch


def test_files_open_in_coffea_eager_mode_with_nanoaod_behaviours(dataset):
    events = NanoEventsFactory.from_root(
        {_first_file(dataset): "Events"}, schemaclass=NanoAODSchema, mode="eager"
    ).events()
    jets = events.Jet
    assert ak.all(jets.isTightLeptonVeto == (jets.jetId == 6))
    assert ak.any(~jets.isTightLeptonVeto)
    dijet = jets[:, 0] + jets[:, 1]
    assert ak.all(dijet.mass >= 0)
    counts = uproot.open(_first_file(dataset))["Events"]["nMuon"].array(library="np")
    assert np.array_equal(ak.to_numpy(ak.num(events.Muon)), counts)
    assert ak.all(abs(events.PV.z) < 30)
    assert ak.all(abs(events.Electron.charge) == 1)


def test_files_open_in_coffea_dask_mode_and_only_touched_branches_are_read(dataset):
    path = _first_file(dataset)
    events = NanoEventsFactory.from_root(
        {path: "Events"}, schemaclass=NanoAODSchema, mode="dask"
    ).events()
    total = ak.sum(events.Jet.pt[events.Jet.btagCSVV2 > 0.5])
    columns = next(iter(dak.report_necessary_columns(total).values()))
    assert {"Jet_pt", "Jet_btagCSVV2"} <= set(columns)
    assert not {"MET_pt", "PV_npvs", "Muon_pt", "Jet_hadronFlavour"} & set(columns)
    (computed,) = dask.compute(total, scheduler="sync")
    arrays = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_btagCSVV2"])
    expected = ak.sum(arrays.Jet_pt[arrays.Jet_btagCSVV2 > 0.5])
    assert computed == pytest.approx(float(expected), rel=1e-4)  # float32 sums, another order


def test_event_numbers_are_unique_and_count_generated_events(dataset):
    fileset = json.loads((dataset / "fileset.json").read_text())
    entry = fileset["ttbar__nominal"]
    events = np.concatenate(
        [uproot.open(dataset / p)["Events"]["event"].array(library="np") for p in entry["files"]]
    )
    assert np.unique(events).size == events.size
    assert events.min() >= 1
    assert events.max() <= entry["metadata"]["nevts"]
