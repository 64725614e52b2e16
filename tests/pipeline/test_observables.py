from __future__ import annotations

import functools
import itertools

import awkward as ak
import hist
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import uproot

from diffana.pipeline import (
    HARD,
    Regular,
    at_least,
    best_trijet_mass,
    cut,
    exactly,
    kde_histogram,
    logical_and,
    pad,
    scalar_sum,
    trijet_candidates,
    trijet_indices,
)
from diffana.pipeline.gradcheck import check_gradients

AGC = Regular(25, 50.0, 550.0)
RNG = np.random.default_rng(17)


def _p4(pt, eta, phi, mass):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)


def _loop_best_trijet(pt, eta, phi, mass, selected, btag):
    """The AGC choice by plain Python loops over the selected jets of each event."""
    out = np.zeros(len(pt))
    for i in range(len(pt)):
        jets = [j for j in range(pt.shape[1]) if selected[i, j]]
        best = None
        for combo in itertools.combinations(jets, 3):
            if not any(btag[i, j] for j in combo):
                continue
            px, py, pz, e = (
                sum(v)
                for v in zip(
                    *(_p4(pt[i, j], eta[i, j], phi[i, j], mass[i, j]) for j in combo), strict=True
                )
            )
            tpt = np.hypot(px, py)
            if best is None or tpt > best[0]:
                best = (tpt, np.sqrt(max(e**2 - px**2 - py**2 - pz**2, 0.0)))
        out[i] = 0.0 if best is None else best[1]
    return out


def _random_jets(events=40, objects=7):
    pt = RNG.exponential(40.0, (events, objects)) + 15.0
    eta = RNG.normal(0.0, 1.5, (events, objects))
    phi = RNG.uniform(-np.pi, np.pi, (events, objects))
    mass = RNG.uniform(2.0, 15.0, (events, objects))
    btag = RNG.uniform(size=(events, objects))
    return pt, eta, phi, mass, btag


def test_trijet_indices_follow_awkward_combinations():
    combos = ak.combinations(ak.Array([list(range(6))]), 3)
    expected = np.stack([ak.to_numpy(combos[f][0]) for f in ("0", "1", "2")], axis=1)
    np.testing.assert_array_equal(trijet_indices(6), expected)


def test_hard_trijet_choice_equals_a_loop_over_combinations():
    pt, eta, phi, mass, btag = _random_jets()
    selected = pt > 30.0
    tagged = btag > 0.7
    trijets = trijet_candidates(pt, eta, phi, mass)
    got = best_trijet_mass(trijets, selected.astype(float), tagged.astype(float), hardness=HARD)
    expected = _loop_best_trijet(pt, eta, phi, mass, selected, tagged)
    assert np.any(expected == 0.0)
    assert np.any(expected > 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@jax.jit
def _soft_choice(trijets, pt, btag, hardness):
    selected = cut(pt, 30.0, width=5.0, hardness=hardness)
    tagged = cut(btag, 0.7, width=0.05, hardness=hardness)
    return best_trijet_mass(trijets, selected, tagged, hardness=hardness)


def test_soft_choice_converges_to_the_hard_choice():
    pt, eta, phi, mass, btag = _random_jets(events=300)
    trijets = trijet_candidates(pt, eta, phi, mass)
    hard = best_trijet_mass(
        trijets, (pt > 30.0).astype(float), (btag > 0.7).astype(float), hardness=HARD
    )
    has = np.asarray(hard) > 0
    biases = []
    for h in (1.0, 10.0, 100.0, 1000.0):
        soft = _soft_choice(trijets, pt, btag, h)
        biases.append(np.mean(np.abs(np.asarray(soft) - hard)[has]))
    assert all(a > 3 * b for a, b in itertools.pairwise(biases))
    assert biases[-1] < 1e-3 * np.mean(np.asarray(hard)[has])


def test_soft_trijet_mass_derivatives_match_finite_differences():
    pt, eta, phi, mass, btag = _random_jets(events=3, objects=5)

    def f(jet_threshold, btag_threshold, jet_pt):
        trijets = trijet_candidates(jet_pt, eta, phi, mass)
        selected = cut(jet_pt, jet_threshold, width=5.0, hardness=1.0)
        tagged = cut(btag, btag_threshold, width=0.1, hardness=1.0)
        return best_trijet_mass(trijets, selected, tagged, hardness=1.0)

    check_gradients(f, 30.0, 0.5, pt)


def test_no_valid_trijet_gives_zero_with_finite_gradients():
    trijets = trijet_candidates(*RNG.uniform(1.0, 2.0, (4, 1, 4)))
    zero = np.zeros((1, 4))
    for hardness in (HARD, 2.0):
        assert float(best_trijet_mass(trijets, zero, zero, hardness=hardness)[0]) == 0.0

    def f(selected):
        return best_trijet_mass(
            trijet_candidates(*([selected] * 4)), selected, selected, hardness=2.0
        )

    grad = jax.jit(jax.jacrev(f))(np.zeros((1, 4)))
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.fixture(scope="module")
def cms_events(shared):
    branches = [
        "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagCSVV2", "Jet_jetId",
        "Electron_pt", "Electron_eta", "Electron_cutBased", "Electron_sip3d",
        "Muon_pt", "Muon_eta", "Muon_tightId", "Muon_sip3d", "Muon_pfRelIso04_all",
    ]  # fmt: skip
    path = shared / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    with uproot.open(path) as f:
        return f["Events"].arrays(branches)


def _awkward_agc(ev, jet_pt_cut):
    """The AGC selection with awkward booleans (the oracle), per event."""
    electrons = (ev.Electron_pt > 30) & (abs(ev.Electron_eta) < 2.1)
    electrons = electrons & (ev.Electron_cutBased == 4) & (ev.Electron_sip3d < 4)
    muons = (ev.Muon_pt > 30) & (abs(ev.Muon_eta) < 2.1) & ev.Muon_tightId
    muons = muons & (ev.Muon_sip3d < 4) & (ev.Muon_pfRelIso04_all < 0.15)
    jets = (ev.Jet_pt > jet_pt_cut) & (abs(ev.Jet_eta) < 2.4) & (ev.Jet_jetId == 6)
    tagged = jets & (ev.Jet_btagCSVV2 > 0.5)
    fields = ("pt", "eta", "phi", "mass", "btagCSVV2")
    trijet = ak.combinations(ak.zip({k: ev[f"Jet_{k}"] for k in fields})[jets], 3)
    p4 = [
        _p4(*(ak.values_astype(trijet[i][k], np.float64) for k in fields[:4]))
        for i in ("0", "1", "2")
    ]
    px, py, pz, e = ((p4[0][c] + p4[1][c]) + p4[2][c] for c in range(4))
    btags = [trijet[i].btagCSVV2 for i in ("0", "1", "2")]
    keep = np.maximum(btags[0], np.maximum(btags[1], btags[2])) > 0.5
    tpt = np.hypot(px, py)[keep]
    tmass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))[keep]
    best = ak.argmax(tpt, axis=1, keepdims=True)
    return {
        "one_lepton": (ak.sum(electrons, 1) + ak.sum(muons, 1)) == 1,
        "four_jets": ak.sum(jets, 1) >= 4,
        "one_b": ak.sum(tagged, 1) == 1,
        "two_b": ak.sum(tagged, 1) >= 2,
        "ht": ak.sum(ev.Jet_pt[jets], axis=1),
        "mbjj": ak.fill_none(ak.firsts(tmass[best]), 0.0),
    }


def _padded(ev):
    """Every branch padded to its collection's largest multiplicity, and the masks."""
    cols = {}
    for name in ev.fields:
        collection = name.split("_")[0]
        most = int(ak.max(ak.num(ev[f"{collection}_pt"])))
        cols[name], cols[collection] = pad(ev[name], most, name=name)
    return cols


def _diffana_agc(cols, jet_pt_cut, hardness):
    """The same selection with diffana's ops on padded arrays."""
    h = hardness
    electrons = logical_and(
        cut(cols["Electron_pt"], 30.0, width=2.0, hardness=h, mask=cols["Electron"]),
        cut(jnp.abs(cols["Electron_eta"]), 2.1, width=0.05, hardness=h, op="<"),
        cols["Electron_cutBased"] == 4,
        cut(cols["Electron_sip3d"], 4.0, width=0.2, hardness=h, op="<"),
    )
    muons = logical_and(
        cut(cols["Muon_pt"], 30.0, width=2.0, hardness=h, mask=cols["Muon"]),
        cut(jnp.abs(cols["Muon_eta"]), 2.1, width=0.05, hardness=h, op="<"),
        cols["Muon_tightId"],
        cut(cols["Muon_sip3d"], 4.0, width=0.2, hardness=h, op="<"),
        cut(cols["Muon_pfRelIso04_all"], 0.15, width=0.01, hardness=h, op="<"),
    )
    jets = logical_and(
        cut(cols["Jet_pt"], jet_pt_cut, width=2.0, hardness=h, mask=cols["Jet"]),
        cut(jnp.abs(cols["Jet_eta"]), 2.4, width=0.05, hardness=h, op="<"),
        cols["Jet_jetId"] == 6,
    )
    btag = cut(cols["Jet_btagCSVV2"], 0.5, width=0.02, hardness=h)
    kinematics = (cols[f"Jet_{k}"].astype(jnp.float64) for k in ("pt", "eta", "phi", "mass"))
    return {
        "one_lepton": exactly(jnp.concatenate([electrons, muons], axis=1), 1, hardness=h),
        "four_jets": at_least(jets, 4, hardness=h),
        "one_b": exactly(jets * btag, 1, hardness=h),
        "two_b": at_least(jets * btag, 2, hardness=h),
        "ht": scalar_sum(cols["Jet_pt"].astype(jnp.float64), jets),
        "mbjj": best_trijet_mass(trijet_candidates(*kinematics), jets, btag, hardness=h),
    }


agc_soft = jax.jit(_diffana_agc)
agc_hard = jax.jit(functools.partial(_diffana_agc, hardness=HARD))


def _hist(values, weights):
    h = hist.Hist(hist.axis.Regular(25, 50, 550), storage=hist.storage.Weight())
    h.fill(values, weight=weights)
    return h.view(flow=True)


@pytest.mark.parametrize("jet_pt_cut", [20.0, 30.0])
def test_hard_agc_selection_on_real_cms_data_equals_awkward_and_hist(cms_events, jet_pt_cut):
    expected = _awkward_agc(cms_events, jet_pt_cut)
    got = agc_hard(_padded(cms_events), jet_pt_cut)
    for key in ("one_lepton", "four_jets", "one_b", "two_b", "ht"):
        np.testing.assert_array_equal(got[key], ak.to_numpy(expected[key]).astype(float))
    mbjj = ak.to_numpy(expected["mbjj"])
    assert np.sum(mbjj > 0) >= 3  # events with a b-tagged trijet (of the 200 in the file)
    np.testing.assert_allclose(got["mbjj"], mbjj, rtol=1e-12)
    # Histograms: the AGC regions (few of 200 events pass) and every event with a trijet / jets.
    base = ak.to_numpy(expected["one_lepton"] & expected["four_jets"])
    for key, region in [
        ("ht", base & ak.to_numpy(expected["one_b"])),
        ("mbjj", base & ak.to_numpy(expected["two_b"])),
        ("ht", ak.to_numpy(expected["ht"]) > 0),
        ("mbjj", mbjj > 0),
    ]:
        values = ak.to_numpy(expected[key])
        oracle = _hist(values[region], None)
        h = kde_histogram(got[key], AGC, bandwidth=20.0, hardness=HARD, weights=region)
        np.testing.assert_array_equal(h.sumw, oracle.value)
        np.testing.assert_array_equal(h.sumw2, oracle.variance)


def test_soft_agc_selection_on_real_cms_data_converges_to_hard(cms_events):
    cols = _padded(cms_events)
    hard = agc_hard(cols, 25.0)
    weight = hard["four_jets"] * hard["one_b"]
    hard_h = kde_histogram(hard["ht"], AGC, bandwidth=20.0, hardness=HARD, weights=weight).sumw
    distances = []
    for h in (1.0, 10.0, 100.0, 1e4):
        soft = agc_soft(cols, 25.0, h)
        for value in soft.values():
            assert np.all(np.isfinite(np.asarray(value)))
        weight = soft["four_jets"] * soft["one_b"]
        soft_h = kde_histogram(soft["ht"], AGC, bandwidth=20.0, hardness=h, weights=weight).sumw
        distances.append(float(np.abs(np.asarray(soft_h) - hard_h).sum()))
    assert all(a > b for a, b in itertools.pairwise(distances))
    assert distances[-1] < 1e-3
