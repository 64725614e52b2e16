"""Fixtures of the AGC processor tests: a small synthetic dataset, skimmed engines, and an
independent implementation of the AGC selection with uproot + awkward + hist (no diffana code),
written the way the AGC notebook writes it, systematics included.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import awkward as ak
import hist
import numpy as np
import pytest
import uproot

LUMI = 3378.0
BRANCHES = [
    "run", "luminosityBlock", "event",
    "Electron_pt", "Electron_eta", "Electron_cutBased", "Electron_sip3d",
    "Muon_pt", "Muon_eta", "Muon_tightId", "Muon_sip3d", "Muon_pfRelIso04_all",
    "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagCSVV2", "Jet_jetId",
]  # fmt: skip
CHUNK = 1000  # entries per chunk
BLOCK = 512  # events per slab: the kernels compile for this one length


# ---------------------------------------------------------------- the JER factors, from their spec
def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 as published (Steele, Lea, Flood 2014), on uint64 with wrap-around."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def jer_factors(arrays: ak.Array) -> ak.Array:
    """``1 + 0.05 z`` per jet, ``z`` the Box-Muller normal of the documented hash."""
    u64 = lambda a: np.asarray(a, dtype=np.uint64)  # noqa: E731
    seed = _mix(_mix(_mix(u64(arrays.run)) ^ u64(arrays.luminosityBlock)) ^ u64(arrays.event))
    counts = ak.to_numpy(ak.num(arrays.Jet_pt))
    index = (
        np.concatenate([np.arange(n) for n in counts]).astype(np.uint64)
        if counts.sum()
        else np.zeros(0, np.uint64)
    )
    base = np.repeat(seed, counts) + np.uint64(2) * index
    with np.errstate(over="ignore"):
        u1 = ((_mix(base) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        u2 = ((_mix(base + np.uint64(1)) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return ak.unflatten(1.0 + 0.05 * z, counts)


# ---------------------------------------------------------------- the AGC selection, as the notebook
def _trijet_mass(jets: ak.Array, btag_threshold: float) -> np.ndarray:
    trijet = ak.combinations(jets, 3, fields=["j1", "j2", "j3"])
    j1, j2, j3 = trijet.j1, trijet.j2, trijet.j3
    px = sum(j.pt * np.cos(j.phi) for j in (j1, j2, j3))
    py = sum(j.pt * np.sin(j.phi) for j in (j1, j2, j3))
    pz = sum(j.pt * np.sinh(j.eta) for j in (j1, j2, j3))
    e = sum(np.sqrt((j.pt * np.cosh(j.eta)) ** 2 + j.mass**2) for j in (j1, j2, j3))
    max_btag = np.maximum(j1.btagCSVV2, np.maximum(j2.btagCSVV2, j3.btagCSVV2))
    keep = max_btag > btag_threshold
    pt, mass2 = np.hypot(px, py)[keep], (e**2 - px**2 - py**2 - pz**2)[keep]
    best = ak.argmax(pt, axis=1, keepdims=True)
    return np.sqrt(np.maximum(ak.to_numpy(ak.flatten(mass2[best])), 0.0))


def agc_histograms(fileset: dict, params: dict) -> dict[str, hist.Hist]:
    """The AGC's histograms of a fileset at thresholds ``params``, named as the AGC names them."""
    out: dict[str, hist.Hist] = {}

    def fill(name: str, x, w) -> None:
        h = out.setdefault(
            name, hist.Hist(hist.axis.Regular(25, 50, 550), storage=hist.storage.Weight())
        )
        h.fill(np.asarray(x, dtype=np.float64), weight=np.asarray(w, dtype=np.float64))

    for entry in fileset.values():
        meta = entry["metadata"]
        process, variation = meta["process"], meta["variation"]
        xsec_weight = meta["xsec"] * LUMI / meta["nevts"]
        for file in entry["files"]:
            events = uproot.open(file)["Events"].arrays(BRANCHES)
            variations = {"nominal": 1.0}
            if variation == "nominal":
                variations |= {"pt_scale_up": 1.03, "pt_res_up": jer_factors(events)}
            for syst, factor in variations.items():
                n_elecs = ak.sum(
                    (events.Electron_pt > params["lepton_pt"]) & (np.abs(events.Electron_eta) < 2.1)
                    & (events.Electron_cutBased == 4) & (events.Electron_sip3d < 4),
                    axis=1,
                )  # fmt: skip
                n_muons = ak.sum(
                    (events.Muon_pt > params["lepton_pt"]) & (np.abs(events.Muon_eta) < 2.1)
                    & events.Muon_tightId & (events.Muon_sip3d < 4)
                    & (events.Muon_pfRelIso04_all < 0.15),
                    axis=1,
                )  # fmt: skip
                # the AGC multiplies by a float64 array: the varied pT are float64
                pt64 = ak.values_astype(events.Jet_pt, np.float64)
                jets = ak.zip(
                    {
                        "pt": pt64 * factor if syst != "nominal" else events.Jet_pt,
                        "eta": events.Jet_eta, "phi": events.Jet_phi, "mass": events.Jet_mass,
                        "btagCSVV2": events.Jet_btagCSVV2, "jetId": events.Jet_jetId,
                    }
                )  # fmt: skip
                jets = jets[
                    (jets.pt > params["jet_pt"])
                    & (np.abs(jets.eta) < 2.4)
                    & ((jets.jetId & 4) != 0)
                ]
                one_lep = (n_elecs + n_muons) == 1
                four_jets = ak.num(jets) >= 4
                regions = {
                    "4j1b": one_lep & four_jets & (ak.sum(jets.btagCSVV2 >= params["btag"], axis=1) == 1),
                    "4j2b": one_lep & four_jets & (ak.sum(jets.btagCSVV2 > params["btag"], axis=1) >= 2),
                }  # fmt: skip
                for region, selection in regions.items():
                    region_jets = jets[selection]
                    if region == "4j1b":
                        observable = ak.to_numpy(ak.sum(region_jets.pt, axis=-1))
                    else:
                        observable = _trijet_mass(region_jets, params["btag"])
                    weights = np.ones(len(region_jets)) * xsec_weight
                    if syst != "nominal":
                        fill(f"{region}_{process}_{syst}", observable, weights)
                        continue
                    suffix = "" if variation == "nominal" else f"_{variation}"
                    fill(f"{region}_{process}{suffix}", observable, weights)
                    if variation != "nominal":
                        continue
                    pts = ak.to_numpy(region_jets.pt[:, :4]).astype(np.float64).reshape(-1, 4)
                    for i in range(4):
                        for direction, sign in (("up", 1.0), ("down", -1.0)):
                            w = weights * (1.0 + sign * (pts[:, i] * 0.075 / 50))
                            fill(f"{region}_{process}_btag_var_{i}_{direction}", observable, w)
                    if process == "wjets":
                        fill(f"{region}_{process}_scale_var_up", observable, weights * 1.025)
                        fill(f"{region}_{process}_scale_var_down", observable, weights * 0.975)
    return out


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def agc_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in synthetic dataset, small: 6000 ttbar nominal events, one file per dataset."""
    from diffana.datasets.generate import generate

    return generate(
        tmp_path_factory.mktemp("agc") / "data", events_per_sample=6000, files_per_sample=1
    ).outdir


@pytest.fixture(scope="session")
def agc_fileset(agc_dataset: Path) -> dict:
    from diffana.datasets.fileset import load_fileset

    return load_fileset(agc_dataset)


@pytest.fixture(scope="session")
def real_file(shared: Path) -> str:
    return str(shared / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root")


@pytest.fixture(scope="session")
def real_fileset(real_file: str) -> dict:
    meta = {"process": "ttbar", "variation": "nominal", "xsec": 729.84, "nevts": 200}
    return {"ttbar__nominal": {"files": {real_file: "Events"}, "metadata": meta}}


@pytest.fixture(scope="session")
def agc_engine(agc_fileset: dict):
    """The AGC processor (defaults) skimmed once, in process."""
    from diffana.pipeline.engine import Engine
    from diffana.processors.agc_ttbar import AGCTtbarProcessor

    with Engine(AGCTtbarProcessor(), agc_fileset, chunk_size=CHUNK, block_size=BLOCK) as engine:
        engine.skim()
        yield engine


@pytest.fixture(scope="session")
def agc():
    """The independent implementation (test modules cannot import this conftest)."""
    return SimpleNamespace(
        histograms=agc_histograms, jer_factors=jer_factors, chunk=CHUNK, block=BLOCK
    )
