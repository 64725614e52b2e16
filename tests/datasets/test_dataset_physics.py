"""The generated events have the features that make cut optimisation meaningful."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot


@pytest.fixture(scope="module")
def events(fileset: dict) -> dict[str, ak.Array]:
    out = {}
    for name in ("ttbar__nominal", "wjets__nominal"):
        files = list(fileset[name]["files"])
        out[name] = uproot.open(files[0])["Events"].arrays()
    return out


def _central(ev: ak.Array) -> ak.Array:
    return (ev.Jet_pt > 30) & (abs(ev.Jet_eta) < 2.4) & (ev.Jet_jetId == 6)


def test_every_written_event_passes_the_documented_preselection(events):
    for ev in events.values():
        jets = ak.sum((ev.Jet_pt > 20) & (abs(ev.Jet_eta) < 2.5), axis=1)
        leptons = ak.sum((ev.Electron_pt > 20) & (abs(ev.Electron_eta) < 2.5), axis=1) + ak.sum(
            (ev.Muon_pt > 20) & (abs(ev.Muon_eta) < 2.5), axis=1
        )
        assert ak.all(jets >= 4)
        assert ak.all(leptons >= 1)


def test_ttbar_has_more_jets_and_b_jets_than_wjets(events):
    tt, wj = events["ttbar__nominal"], events["wjets__nominal"]
    n_jets = [ak.mean(ak.sum(_central(ev), axis=1)) for ev in (tt, wj)]
    n_b = [ak.mean(ak.sum(_central(ev) & (ev.Jet_hadronFlavour == 5), axis=1)) for ev in (tt, wj)]
    assert n_jets[0] > n_jets[1] + 0.3
    assert n_b[0] > 1.0
    assert n_b[1] < 0.3


def test_btag_scores_separate_b_c_and_light_jets(events):
    ev = events["ttbar__nominal"]
    score = ak.to_numpy(ak.flatten(ev.Jet_btagCSVV2))
    flavour = ak.to_numpy(ak.flatten(ev.Jet_hadronFlavour))
    pt = ak.to_numpy(ak.flatten(ev.Jet_pt))
    rate = {f: np.mean(score[(flavour == f) & (pt > 30)] > 0.5) for f in (0, 4, 5)}
    assert rate[5] > 0.75
    assert 0.25 < rate[4] < 0.55
    assert rate[0] < 0.1
    valid = score > -1
    # genuine b jets peak near 1, light jets near 0; both have tails and the -10 default
    bins = np.linspace(0, 1, 21)
    assert bins[np.argmax(np.histogram(score[valid & (flavour == 5)], bins)[0])] >= 0.85
    assert bins[np.argmax(np.histogram(score[valid & (flavour == 0)], bins)[0])] < 0.2
    assert np.mean(score[valid & (flavour == 0)] > 0.8) > 0.002
    assert np.mean(score[valid & (flavour == 5)] < 0.3) > 0.01
    assert 0.15 < np.mean(score[flavour == 0] == -10) < 0.35
    # loose thresholds mistag soft light jets more often than hard ones
    light = valid & (flavour == 0)
    assert np.mean(score[light & (pt < 30)] > 0.2) > np.mean(score[light & (pt > 60)] > 0.2) + 0.03


def test_jets_reach_below_the_cuts_and_into_the_forward_region(events):
    ev = events["wjets__nominal"]
    pt = ak.to_numpy(ak.flatten(ev.Jet_pt))
    eta = np.abs(ak.to_numpy(ak.flatten(ev.Jet_eta)))
    jet_id = ak.to_numpy(ak.flatten(ev.Jet_jetId))
    assert pt.min() >= 15.0  # NanoAOD keeps jets above 15 GeV
    assert np.mean(pt < 30) > 0.2
    assert eta.max() <= 4.7
    assert np.mean(eta > 2.4) > 0.05
    assert np.mean(eta > 4.0) > 0.002
    assert set(np.unique(jet_id)) == {0, 2, 6}
    assert 0.03 < np.mean(jet_id != 6) < 0.3
    # the spectrum falls
    counts = np.histogram(pt, bins=[40, 60, 80, 100, 150, 200])[0] / np.diff(
        [40, 60, 80, 100, 150, 200]
    )
    assert np.all(np.diff(counts) < 0)


def test_leptons_sit_on_both_sides_of_the_cuts_and_sometimes_fail_identification(events):
    ev = events["ttbar__nominal"]
    ele_pt = ak.to_numpy(ak.flatten(ev.Electron_pt))
    muo_pt = ak.to_numpy(ak.flatten(ev.Muon_pt))
    for pt in (ele_pt, muo_pt):
        assert 0.1 < np.mean(pt < 30) < 0.9
    cut_based = ak.to_numpy(ak.flatten(ev.Electron_cutBased))
    assert set(np.unique(cut_based)) == {0, 1, 2, 3, 4}
    assert 0.2 < np.mean(cut_based == 4) < 0.8
    tight = ak.to_numpy(ak.flatten(ev.Muon_tightId))
    iso = ak.to_numpy(ak.flatten(ev.Muon_pfRelIso04_all))
    assert 0.2 < np.mean(tight) < 0.9
    assert 0.05 < np.mean(iso > 0.15) < 0.8
    sip = ak.to_numpy(ak.flatten(ev.Muon_sip3d))
    assert 0.01 < np.mean(sip > 4) < 0.5
