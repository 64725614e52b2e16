"""The real CMS 2015 open-data NanoAOD file (200 ttbar events) opens with coffea's NanoEvents.

The file is read as the processors read files: ``NanoEventsFactory.from_root`` with
``NanoAODSchema``, in eager mode and in dask mode (the engine's skim). The schema warns about
cross-references to collections this 2015 file does not have and about ``Photon_mass``, which it
rebuilds; both warnings are named and filtered here.
"""

from __future__ import annotations

import awkward as ak
import dask
import numpy as np
import pytest
import uproot
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

pytestmark = [
    pytest.mark.filterwarnings("ignore:Missing cross-reference:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Branch .* already exists:RuntimeWarning"),
]


def _counts(agc_objects, events):
    ele, muo, jet = agc_objects(events)
    return ak.num(ele) + ak.num(muo), ak.num(jet), ak.sum(jet.btagCSVV2 > 0.5, axis=1)


def test_real_file_reads_in_eager_mode_as_uproot_reads_it(real_file, agc_objects):
    events = NanoEventsFactory.from_root(
        {str(real_file): "Events"}, schemaclass=NanoAODSchema, mode="eager"
    ).events()
    raw = uproot.open(real_file)["Events"].arrays(["Jet_pt", "Jet_btagCSVV2", "Muon_tightId"])
    assert len(events) == 200
    assert ak.all(events.Jet.pt == raw.Jet_pt)
    assert ak.all(events.Jet.btagCSVV2 == raw.Jet_btagCSVV2)
    assert ak.all(events.Muon.tightId == raw.Muon_tightId)
    n_lep, n_jet, n_tag = _counts(agc_objects, events)
    # what the 200 events hold (checked against plain uproot + awkward below)
    assert int(ak.sum(n_lep == 1)) == 14
    assert int(ak.sum(n_jet >= 4)) == 2
    assert int(ak.sum(n_tag >= 1)) == 13


def test_real_file_agc_objects_agree_with_plain_uproot(real_file):
    a = uproot.open(real_file)["Events"].arrays(filter_name=["Electron_*", "Muon_*", "Jet_*"])
    ele = (
        (a.Electron_pt > 30)
        & (abs(a.Electron_eta) < 2.1)
        & (a.Electron_cutBased == 4)
        & (a.Electron_sip3d < 4)
    )
    muo = (
        (a.Muon_pt > 30)
        & (abs(a.Muon_eta) < 2.1)
        & a.Muon_tightId
        & (a.Muon_sip3d < 4)
        & (a.Muon_pfRelIso04_all < 0.15)
    )
    jet = (a.Jet_pt > 30) & (abs(a.Jet_eta) < 2.4) & (a.Jet_jetId == 6)
    assert int(ak.sum(ak.sum(ele, axis=1) + ak.sum(muo, axis=1) == 1)) == 14
    assert int(ak.sum(ak.sum(jet, axis=1) >= 4)) == 2
    assert int(ak.sum(ak.sum(jet & (a.Jet_btagCSVV2 > 0.5), axis=1) >= 1)) == 13


def test_real_file_reads_in_dask_mode_in_chunks(real_file, agc_objects):
    events = NanoEventsFactory.from_root(
        {str(real_file): {"object_path": "Events", "steps": [[0, 120], [120, 200]]}},
        schemaclass=NanoAODSchema,
        mode="dask",
    ).events()
    assert events.npartitions == 2
    n_lep, n_jet, n_tag = _counts(agc_objects, events)
    (n_lep, n_jet, n_tag) = dask.compute(n_lep, n_jet, n_tag, scheduler="sync")
    assert np.sum(ak.to_numpy(n_lep) == 1) == 14
    assert np.sum(ak.to_numpy(n_jet) >= 4) == 2
    assert np.sum(ak.to_numpy(n_tag) >= 1) == 13
