"""The AGC selection of the generated files, computed independently of the generator, vs the AGC.

The selection is the AGC notebook's (analysis version 2), written with coffea's NanoEvents and its
four-vector behaviours, on the files as written; the weights come from the fileset metadata. The
truth is the AGC's histograms of the real CMS open data (``histos_all_file_per_process.json``).
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

pytestmark = [
    pytest.mark.filterwarnings("ignore:Missing cross-reference:RuntimeWarning"),
]

LUMI = 3378.0  # /pb, the AGC's
EDGES = np.linspace(50.0, 550.0, 26)  # the AGC's histograms, plus under- and overflow
NOMINAL = (
    "ttbar",
    "wjets",
    "single_top_s_chan",
    "single_top_t_chan",
    "single_top_tW",
)
VARIATIONS = ("scaledown", "scaleup", "ME_var", "PS_var")


def _fill(values: np.ndarray, weight: float) -> np.ndarray:
    idx = np.searchsorted(EDGES, values, side="right")
    return np.bincount(idx, minlength=EDGES.size + 1) * weight


def agc_histograms(path: str, weight: float, agc_objects) -> dict[str, np.ndarray]:
    """H_T in 4j1b and m_bjj in 4j2b of one file, as the AGC computes them."""
    events = NanoEventsFactory.from_root(
        {path: "Events"}, schemaclass=NanoAODSchema, mode="eager"
    ).events()
    ele, muo, jet = agc_objects(events)
    n_tag = ak.sum(jet.btagCSVV2 > 0.5, axis=1)
    base = (ak.num(ele) + ak.num(muo) == 1) & (ak.num(jet) >= 4)
    ht = ak.sum(jet[base & (n_tag == 1)].pt, axis=1)
    trijet = ak.combinations(jet[base & (n_tag >= 2)], 3, fields=["j1", "j2", "j3"])
    p4 = trijet.j1 + trijet.j2 + trijet.j3
    max_btag = np.maximum(trijet.j1.btagCSVV2, np.maximum(trijet.j2.btagCSVV2, trijet.j3.btagCSVV2))
    p4 = p4[max_btag > 0.5]
    mbjj = ak.flatten(p4[ak.argmax(p4.pt, axis=1, keepdims=True)].mass)
    return {"4j1b": _fill(ak.to_numpy(ht), weight), "4j2b": _fill(ak.to_numpy(mbjj), weight)}


@pytest.fixture(scope="module")
def histograms(fileset: dict, agc_objects) -> dict[str, dict[str, np.ndarray]]:
    """Per dataset and region: bin contents, and the raw event counts under ``"n_<region>"``."""
    out = {}
    for name, entry in fileset.items():
        meta = entry["metadata"]
        weight = meta["xsec"] * LUMI / meta["nevts"]
        total = {"4j1b": 0.0, "4j2b": 0.0}
        for path in entry["files"]:
            for region, h in agc_histograms(path, weight, agc_objects).items():
                total[region] = total[region] + h
        out[name] = {**total, **{f"n_{r}": total[r].sum() / weight for r in ("4j1b", "4j2b")}}
    return out


def _reference(reference: dict, region: str, process: str, variation: str = "nominal"):
    suffix = "" if variation == "nominal" else f"_{variation}"
    return np.asarray(reference[f"{region}_{process}{suffix}"]["contents"])


@pytest.mark.parametrize("process", NOMINAL)
@pytest.mark.parametrize("region", ["4j1b", "4j2b"])
def test_yields_match_the_agc_within_15_percent(histograms, reference, process, region):
    mine = histograms[f"{process}__nominal"]
    ref = _reference(reference, region, process)
    ratio = mine[region].sum() / ref.sum()
    stat = 1.0 / np.sqrt(mine[f"n_{region}"])
    print(
        f"{region} {process}: {mine[region].sum():.1f} vs AGC {ref.sum():.1f} (ratio {ratio:.3f} ± {stat:.3f})"
    )
    assert stat < 0.06, "too few selected events for a meaningful 15% check"
    assert abs(ratio - 1.0) < 0.15


@pytest.mark.parametrize("variation", VARIATIONS)
def test_ttbar_variations_move_the_yields_as_in_the_agc(histograms, reference, variation):
    for region in ("4j1b", "4j2b"):
        mine = (
            histograms[f"ttbar__{variation}"][region].sum()
            / histograms["ttbar__nominal"][region].sum()
        )
        ref = (
            _reference(reference, region, "ttbar", variation).sum()
            / _reference(reference, region, "ttbar").sum()
        )
        print(f"{region} {variation}/nominal: {mine:.3f} vs AGC {ref:.3f}")
        assert abs(mine - ref) < 0.06


# coarse bins of 80 GeV (in GeV: under 50, 50-110, 110-190, ..., 430-550, overflow), so that the
# smaller backgrounds are compared on their shape rather than on their bin-by-bin fluctuations
COARSE = np.array([0, 1, 4, 8, 12, 16, 20, 26, 27])


@pytest.mark.parametrize(
    ("process", "limit"), [("ttbar", 0.05), ("single_top_tW", 0.10), ("wjets", 0.15)]
)
@pytest.mark.parametrize("region", ["4j1b", "4j2b"])
def test_observable_shapes_resemble_the_agc(histograms, reference, process, limit, region):
    """Total-variation distance of the normalised H_T / m_bjj histograms in coarse bins."""
    mine = histograms[f"{process}__nominal"][region]
    ref = _reference(reference, region, process)
    print(f"{region} {process} bin by bin (%):")
    print("  generated", np.round(100 * mine / mine.sum(), 1))
    print("  AGC      ", np.round(100 * ref / ref.sum(), 1))
    p, q = (np.add.reduceat(h, COARSE[:-1]) / h.sum() for h in (mine, ref))
    assert 0.5 * np.abs(p - q).sum() < limit


def test_ttbar_m_bjj_peaks_at_the_top_mass_as_in_the_agc(histograms, reference):
    mine = histograms["ttbar__nominal"]["4j2b"][1:-1]
    ref = _reference(reference, "4j2b", "ttbar")[1:-1]
    assert (
        EDGES[np.argmax(ref)] == EDGES[np.argmax(mine)]
        or abs(np.argmax(ref) - np.argmax(mine)) == 1
    )
    assert 150.0 <= EDGES[np.argmax(mine)] < 190.0
