"""The AGC thresholds have an optimum inside a sensible range, not at an end of it.

Proxy: the expected uncertainty on the ttbar signal strength of a counting measurement in
4j1b + 4j2b (the AGC selection, one threshold moved at a time): the inverse Hessian of pyhf's
negative log-likelihood (numpy backend) at the Asimov point, by finite differences, with the ttbar modelling variations (ME, PS, scale: the
generated samples, ME and PS symmetrised), the jet energy scale (jet pT x 1.03), W+jets
normalisation (2.5 %) and luminosity (3 %). The selection here is written anew (awkward on the
arrays uproot reads), independent of the package's.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pyhf
import pytest
import uproot

LUMI = 3378.0
BRANCHES = [
    "Electron_pt",
    "Electron_eta",
    "Electron_cutBased",
    "Electron_sip3d",
    "Muon_pt",
    "Muon_eta",
    "Muon_tightId",
    "Muon_sip3d",
    "Muon_pfRelIso04_all",
    "Jet_pt",
    "Jet_eta",
    "Jet_jetId",
    "Jet_btagCSVV2",
]
AGC = {"lepton_pt": 30.0, "jet_pt": 30.0, "btag": 0.5}
SCANS = {
    "lepton_pt": [20.0, 30.0, 40.0, 50.0, 60.0],
    "jet_pt": [20.0, 25.0, 30.0, 40.0, 60.0],
    "btag": [0.2, 0.4, 0.6, 0.9],
}


def _count(events: ak.Array, weight: float, lepton_pt, jet_pt, btag, jes=1.0) -> float:
    """Weighted events with one lepton, >= 4 jets and >= 1 b tag (4j1b + 4j2b)."""
    e = (
        (events.Electron_pt > lepton_pt)
        & (abs(events.Electron_eta) < 2.1)
        & (events.Electron_cutBased == 4)
        & (events.Electron_sip3d < 4)
    )
    m = (
        (events.Muon_pt > lepton_pt)
        & (abs(events.Muon_eta) < 2.1)
        & events.Muon_tightId
        & (events.Muon_sip3d < 4)
        & (events.Muon_pfRelIso04_all < 0.15)
    )
    j = (events.Jet_pt * jes > jet_pt) & (abs(events.Jet_eta) < 2.4) & (events.Jet_jetId == 6)
    n_tag = ak.sum(j & (events.Jet_btagCSVV2 > btag), axis=1)
    keep = (ak.sum(e, axis=1) + ak.sum(m, axis=1) == 1) & (ak.sum(j, axis=1) >= 4) & (n_tag >= 1)
    return float(ak.sum(keep)) * weight


@pytest.fixture(scope="module")
def samples(fileset: dict) -> dict[str, tuple[ak.Array, float]]:
    out = {}
    for name, entry in fileset.items():
        meta = entry["metadata"]
        arrays = [uproot.open(path)["Events"].arrays(BRANCHES) for path in entry["files"]]
        out[name] = (ak.concatenate(arrays), meta["xsec"] * LUMI / meta["nevts"])
    return out


def sigma_mu(samples, cuts) -> float:
    count = {name: _count(ev, w, **cuts) for name, (ev, w) in samples.items()}
    jes = {name: _count(ev, w, **cuts, jes=1.03) for name, (ev, w) in samples.items()}
    tt, wj = count["ttbar__nominal"], count["wjets__nominal"]
    st = sum(count[k] for k in count if k.startswith("single_top"))
    st_jes = sum(jes[k] for k in jes if k.startswith("single_top"))

    def sym(name: str, up: float, nominal: float) -> dict:
        return {
            "name": name,
            "type": "histosys",
            "data": {"hi_data": [up], "lo_data": [2 * nominal - up]},
        }

    lumi = {"name": "lumi", "type": "normsys", "data": {"hi": 1.03, "lo": 0.97}}
    ttbar = [
        {"name": "mu", "type": "normfactor", "data": None},
        lumi,
        sym("ME", count["ttbar__ME_var"], tt),
        sym("PS", count["ttbar__PS_var"], tt),
        {
            "name": "scale",
            "type": "histosys",
            "data": {"hi_data": [count["ttbar__scaleup"]], "lo_data": [count["ttbar__scaledown"]]},
        },
        sym("JES", jes["ttbar__nominal"], tt),
    ]
    spec = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {"name": "ttbar", "data": [tt], "modifiers": ttbar},
                    {
                        "name": "wjets",
                        "data": [wj],
                        "modifiers": [
                            lumi,
                            {
                                "name": "wjets_norm",
                                "type": "normsys",
                                "data": {"hi": 1.025, "lo": 0.975},
                            },
                            sym("JES", jes["wjets__nominal"], wj),
                        ],
                    },
                    {
                        "name": "single_top",
                        "data": [st],
                        "modifiers": [lumi, sym("JES", st_jes, st)],
                    },
                ],
            }
        ]
    }
    model = pyhf.Model(
        spec,
        poi_name="mu",
        modifier_settings={
            "normsys": {"interpcode": "code4"},
            "histosys": {"interpcode": "code4p"},
        },
    )
    data = np.array([tt + wj + st, *model.config.auxdata])
    best = np.array(model.config.suggested_init(), dtype=float)  # the Asimov data's optimum
    hessian = _hessian(lambda p: -float(model.logpdf(p, data)[0]), best)
    return float(np.sqrt(np.linalg.inv(hessian)[model.config.poi_index, model.config.poi_index]))


def _hessian(f, x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Central finite-difference Hessian of ``f`` at ``x``."""
    n = x.size
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):

            def at(a: float, b: float, i: int = i, j: int = j) -> float:
                y = x.copy()
                y[i] += a
                y[j] += b
                return f(y)

            out[i, j] = out[j, i] = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)
    return out


@pytest.fixture(scope="module")
def scans(samples) -> dict[str, list[float]]:
    previous = pyhf.get_backend()
    pyhf.set_backend("numpy")
    try:
        return {
            field: [sigma_mu(samples, {**AGC, field: x}) for x in grid]
            for field, grid in SCANS.items()
        }
    finally:
        pyhf.set_backend(*previous)


@pytest.mark.parametrize("field", list(SCANS))
def test_threshold_has_an_interior_optimum(scans, field):
    values = np.array(scans[field])
    print(field, dict(zip(SCANS[field], np.round(values, 4), strict=True)))
    best = int(np.argmin(values))
    assert 0 < best < len(values) - 1, "the optimum sits at an end of the scan"
    # loosening or tightening to the ends costs at least 1 % of the uncertainty
    assert values[0] > 1.01 * values[best]
    assert values[-1] > 1.01 * values[best]
