"""Where the built-in dataset puts the optimum of the AGC's own objective (issue 2, item 4).

The objective is the one the optimisation loop of issue 6 minimises: the expected uncertainty on
``ttbar_norm`` on Asimov data, every nuisance parameter profiled, in the AGC's full statistical model
(``../shared/oracles/agc-reference/cabinetry_config.yml``: 4j1b H_T and 4j2b m_bjj in 11 bins of
40 GeV over 110-550 GeV, NormPlusShape ME/PS/scale/JES/JER/b-tag/W+jets systematics with the AGC's
symmetrisation, staterror, luminosity 3 %, POI in [0, 10]).

1. Generate the default dataset (or ``--data DIR`` to reuse one), skim it once with the AGC
   processor (``diffana.processors.agc_ttbar``) in the engine, in process.
2. At every parameter point: the hard pass (``Engine.hard_histograms``, the AGC's exact selection),
   the AGC pseudo-data, the model (``diffana.stats.build_spec`` + ``Model``) and
   ``sigma = diffana.stats.objectives.poi_uncertainty`` (Asimov data, all NPs profiled).
   Bins with no expected events in any nominal sample (H_T < 4 x the jet-pT threshold: the 4j1b bin
   110-150 GeV is empty for jet pT > 37.5 GeV) are left out of the model: they hold no information,
   and their ``0 / 0`` Poisson terms make the Hessian NaN (in pyhf too).
3. 1-D scans of each threshold through the AGC's cuts (30 GeV, 30 GeV, 0.5), then a coarse joint
   grid around the three 1-D optima.
4. The AGC point cross-checked with pyhf (numpy backend): the finite-difference Hessian of pyhf's
   likelihood of the same workspace at the Asimov point.

Run ``python benchmarks/dataset_optimum.py [--data DIR] [--events-per-sample N] [--no-joint]``.
The last line printed is a JSON object (``lepton_pt_optimum``, ``jet_pt_optimum``, ``btag_optimum``,
``sigma_at_agc_cuts``, ``sigma_at_best``, ``best``, ``improvement``, ``pyhf_sigma_at_agc_cuts``,
the scans, ...).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

from diffana.datasets import generate, load_fileset
from diffana.datasets.generate import DEFAULT_EVENTS
from diffana.pipeline.engine import Engine
from diffana.processors.agc_ttbar import AGCTtbarProcessor, ClippedObjectsWarning
from diffana.stats import Model, agc_pseudodata, build_spec
from diffana.stats.build import to_json
from diffana.stats.objectives import poi_uncertainty

SHARED = Path(__file__).resolve().parents[2] / "shared" / "oracles" / "agc-reference"
CONFIG = yaml.safe_load((SHARED / "cabinetry_config.yml").read_text())
AGC = {"lepton_pt": 30.0, "jet_pt": 30.0, "btag": 0.5}
SCANS = {
    "lepton_pt": [20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0],
    "jet_pt": [20.0, 22.5, 25.0, 27.5, 30.0, 35.0, 40.0, 50.0, 60.0],
    "btag": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
}
NOMINAL = ("ttbar", "wjets", "single_top_s_chan", "single_top_t_chan", "single_top_tW")


def model_config(histograms: dict) -> dict:
    """The AGC config with each region's leading bins that no nominal sample fills left out."""
    config = copy.deepcopy(CONFIG)
    for region in config["Regions"]:
        path, edges = region["RegionPath"], region["Binning"]
        hists = [histograms[f"{path}_{p}"] for p in NOMINAL]
        fine = hists[0].axes[0].edges
        total = sum(h.values() for h in hists)  # no flow bins
        first = 0
        while first < len(edges) - 2:
            lo, hi = np.searchsorted(fine, edges[first]), np.searchsorted(fine, edges[first + 1])
            if total[lo:hi].sum() > 0:
                break
            first += 1
        region["Binning"] = edges[first:]
    return config


def workspace(histograms: dict) -> dict:
    """The AGC workspace (pyhf JSON) of hard histograms, with the AGC pseudo-data."""
    histograms = {**agc_pseudodata(histograms), **histograms}
    return to_json(build_spec(model_config(histograms), histograms))


def sigma(spec: dict) -> tuple[float, int]:
    """Expected uncertainty on ttbar_norm (Asimov data, all NPs profiled) and the fit status."""
    parameters = spec["measurements"][0]["config"]["parameters"]
    model = Model({"channels": spec["channels"], "parameters": parameters}, poi_name="ttbar_norm")
    result = poi_uncertainty(model.structure, model.yields)
    return float(result.value), int(result.status)


def pyhf_sigma(spec: dict, step: float = 1e-4) -> float:
    """The same from pyhf (numpy backend): the inverse of the central finite-difference Hessian of
    pyhf's ``-2 ln L`` at the Asimov point, which is the Asimov data's best fit. (MINUIT's
    uncertainties from ``pyhf.infer.mle.fit(..., return_uncertainties=True)`` are 10-40 % off on
    this model: its covariance is not an exact Hessian.)"""
    import pyhf

    previous = pyhf.get_backend()
    pyhf.set_backend("numpy")
    try:
        model = pyhf.Workspace(spec).model()
        x0 = np.asarray(model.config.suggested_init(), dtype=float)
        asimov = model.expected_data(x0)
        n, eye = x0.size, np.eye(x0.size) * step

        def nll(x):
            return -2.0 * float(model.logpdf(x, asimov)[0])

        hessian = np.empty((n, n))
        for i in range(n):
            for j in range(i, n):
                hessian[i, j] = hessian[j, i] = (
                    nll(x0 + eye[i] + eye[j])
                    - nll(x0 + eye[i] - eye[j])
                    - nll(x0 - eye[i] + eye[j])
                    + nll(x0 - eye[i] - eye[j])
                ) / (4 * step * step)
        poi = model.config.poi_index
        return float(np.sqrt(2.0 * np.linalg.inv(hessian)[poi, poi]))
    finally:
        pyhf.set_backend(*previous)


class Scanner:
    """Hard histograms and sigma per parameter point, each point evaluated once."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.cache = engine, {}

    def __call__(self, params: dict) -> float:
        key = tuple(round(params[k], 6) for k in AGC)
        if key not in self.cache:
            start = time.perf_counter()
            spec = workspace(self.engine.hard_histograms(params))
            value, status = sigma(spec)
            self.cache[key] = (value if status == 0 else float("nan"), spec)
            print(
                f"   {params}: sigma = {value:.4f} (status {status}, "
                f"{time.perf_counter() - start:.1f} s)",
                flush=True,
            )
        return self.cache[key][0]


def scans(scan: Scanner) -> dict:
    out = {}
    for field, grid in SCANS.items():
        values = [scan({**AGC, field: x}) for x in grid]
        best = int(np.nanargmin(values))
        where = "inside" if 0 < best < len(grid) - 1 else "AT A BOUND"
        print(
            f"== {field}: "
            + " ".join(f"{x:g}:{v:.4f}" for x, v in zip(grid, values, strict=True))
            + f"  -> minimum at {grid[best]:g} ({where})",
            flush=True,
        )
        out[field] = {"grid": grid, "sigma": values, "optimum": grid[best]}
    return out


def joint(scan: Scanner, optima: dict) -> dict:
    """A 3 x 3 x 3 grid around the 1-D optima (one step of each 1-D grid either side)."""
    axes = {}
    for field, grid in SCANS.items():
        i = grid.index(optima[field])
        axes[field] = grid[max(i - 1, 0) : i + 2]
    best, best_value = None, np.inf
    for point in itertools.product(*axes.values()):
        params = dict(zip(axes, point, strict=True))
        value = scan(params)
        if value < best_value:
            best, best_value = params, value
    print(f"== joint grid {axes}: best {best}, sigma = {best_value:.4f}")
    return {"axes": axes, "best": best, "sigma": best_value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="reuse a dataset written by 'diffana generate'")
    parser.add_argument("--events-per-sample", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--no-joint", action="store_true", help="1-D scans only")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ClippedObjectsWarning)
    figures: dict = {"load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            start = time.perf_counter()
            data = generate(Path(tmp) / "agc", events_per_sample=args.events_per_sample).outdir
            figures["generate_seconds"] = time.perf_counter() - start
        with Engine(AGCTtbarProcessor(), load_fileset(data), chunk_size=200_000) as engine:
            start = time.perf_counter()
            engine.skim()
            figures["skim_seconds"] = time.perf_counter() - start
            print(f"== skim: {figures['skim_seconds']:.1f} s", flush=True)
            scan = Scanner(engine)
            figures["sigma_at_agc_cuts"] = scan(AGC)
            result = scans(scan)
            optima = {field: r["optimum"] for field, r in result.items()}
            best = {"best": optima, "sigma": scan(optima)}
            if not args.no_joint:
                best = joint(scan, optima)
            start = time.perf_counter()
            check = pyhf_sigma(scan.cache[tuple(AGC.values())][1])
            print(
                f"== AGC cuts: sigma = {figures['sigma_at_agc_cuts']:.5f} (diffana.stats), "
                f"{check:.5f} (pyhf numpy, finite-difference Hessian, {time.perf_counter() - start:.1f} s)"
            )
    figures |= {f"{field}_optimum": value for field, value in optima.items()}
    figures |= {
        "sigma_at_best": best["sigma"],
        "best": best["best"],
        "improvement": 1.0 - best["sigma"] / figures["sigma_at_agc_cuts"],
        "pyhf_sigma_at_agc_cuts": check,
        "pyhf_relative_difference": check / figures["sigma_at_agc_cuts"] - 1.0,
        "interior": all(0 < SCANS[f].index(optima[f]) < len(SCANS[f]) - 1 for f in SCANS),
        "scans": {f: [round(v, 5) for v in r["sigma"]] for f, r in result.items()},
    }
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
