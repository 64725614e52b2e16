"""Benchmark and calibration report of the built-in dataset (``diffana generate``).

1. Speed: the default dataset generated and written with LZ4, events per second (generated events,
   before the preselection, and written events), wall clock and CPU.
2. Compression: the same events written with lz4, zlib, zstd and none; size, write time and uproot
   read speed of the AGC branches and of all branches (lz4 vs zlib is the peer comparison).
3. Calibration: the AGC selection of the default dataset vs the AGC's histograms of the real CMS
   open data: yields, variations and a bin-by-bin comparison; a PNG of the H_T and m_bjj shapes.
4. Cut optimum: the expected uncertainty on the ttbar signal strength of a counting measurement in
   4j1b + 4j2b (Fisher information of the Asimov data, cross-checked with pyhf at the AGC cuts) in
   1-D scans of the lepton pT, jet pT and b-tag thresholds.

Run: ``python benchmarks/generate.py [--events-per-sample N] [--png PATH]``.
The last line printed is a JSON object with ``events_per_second`` and the other figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from diffana.datasets import LUMI, SAMPLES, generate, load_fileset
from diffana.datasets.generate import DEFAULT_EVENTS
from diffana.datasets.summary import AGC_CUTS, EDGES, agc_select, agc_yields, histogram
from diffana.datasets.writer import BRANCHES, COLLECTIONS

REFERENCE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "oracles"
    / "agc-reference"
    / "histos_all_file_per_process.json"
)
AGC_BRANCHES = [
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_mass",
    "Jet_btagCSVV2",
    "Jet_jetId",
    "Electron_pt",
    "Electron_eta",
    "Electron_cutBased",
    "Electron_sip3d",
    "Muon_pt",
    "Muon_eta",
    "Muon_tightId",
    "Muon_sip3d",
    "Muon_pfRelIso04_all",
]
SCANS = {
    "lepton_pt": [20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0],
    "jet_pt": [20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0],
    "btag": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
}


def read_columns(paths: list[str]) -> dict[str, np.ndarray]:
    """The flat columns of files (``nJet``, ``Jet_pt``, ...), as the generator makes them."""
    names = list(BRANCHES) + [f"n{c}" for c in COLLECTIONS]
    names += [f"{c}_{f}" for c, fields in COLLECTIONS.items() for f in fields]
    parts = [uproot.open(p)["Events"].arrays(names) for p in paths]
    arrays = ak.concatenate(parts)
    return {k: ak.to_numpy(ak.flatten(arrays[k], axis=None)) for k in names}


def speed(outdir: Path, events_per_sample: int) -> dict:
    load = os.getloadavg()[0]
    cpu, wall = time.process_time(), time.perf_counter()
    dataset = generate(outdir, events_per_sample=events_per_sample)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    generated = sum(f.generated for f in dataset.files)
    written = sum(f.written for f in dataset.files)
    nbytes = sum(f.nbytes for f in dataset.files)
    print(f"== speed: default dataset ({events_per_sample} ttbar events), LZ4, 1 job")
    print(f"   load average at start {load:.1f} on {os.cpu_count()} cores")
    print(f"   {generated:,} generated, {written:,} written ({nbytes / 1e6:.0f} MB)")
    print(f"   wall {wall:.1f} s, CPU {cpu:.1f} s")
    print(
        f"   {generated / wall:,.0f} generated events/s (wall), {generated / cpu:,.0f} per CPU second"
    )
    return {
        "events_per_second": generated / wall,
        "events_per_cpu_second": generated / cpu,
        "written_events_per_second": written / wall,
        "default_dataset_seconds": wall,
        "default_dataset_cpu_seconds": cpu,
        "generated_events": generated,
        "written_events": written,
        "dataset_megabytes": nbytes / 1e6,
        "load_average": load,
    }


def compression(tmp: Path, events_per_sample: int) -> dict:
    print("== compression: ttbar__nominal, one file; best of 3 reads")
    out = {}
    for codec in ("lz4", "zlib", "zstd", "none"):
        start = time.perf_counter()
        result = generate(
            tmp / codec,
            events_per_sample=events_per_sample,
            files_per_sample=1,
            compression=codec,
            samples=["ttbar__nominal"],
        )
        seconds = time.perf_counter() - start
        (path,) = [f.path for f in result.files]
        tree = uproot.open(path)["Events"]
        n = tree.num_entries
        reads = {}
        for label, branches in (("agc", AGC_BRANCHES), ("all", None)):
            best = np.inf
            for _ in range(3):
                start = time.perf_counter()
                uproot.open(path)["Events"].arrays(branches)
                best = min(best, time.perf_counter() - start)
            reads[label] = n / best
        size = Path(path).stat().st_size
        out[codec] = {
            "bytes": size,
            "generate_seconds": seconds,
            "read_agc": reads["agc"],
            "read_all": reads["all"],
        }
        print(
            f"   {codec:5s} {size / 1e6:6.1f} MB  generate+write {seconds:5.1f} s  "
            f"read AGC branches {reads['agc'] / 1e6:5.2f} M events/s  all {reads['all'] / 1e6:5.2f} M events/s"
        )
    lz4, zlib = out["lz4"], out["zlib"]
    ratios = {
        "lz4_vs_zlib_read_speedup": lz4["read_agc"] / zlib["read_agc"],
        "lz4_vs_zlib_size_ratio": lz4["bytes"] / zlib["bytes"],
    }
    print(
        f"   lz4 vs zlib: reads {ratios['lz4_vs_zlib_read_speedup']:.1f}x faster, "
        f"{ratios['lz4_vs_zlib_size_ratio']:.2f}x the size"
    )
    return ratios


def _reference(reference: dict, region: str, name: str) -> np.ndarray:
    process, variation = name.split("__")
    suffix = "" if variation == "nominal" else f"_{variation}"
    return np.asarray(reference[f"{region}_{process}{suffix}"]["contents"])


def calibration(fileset: dict, columns: dict, reference: dict, png: Path | None) -> dict:
    print("== calibration: AGC selection of the generated events vs the AGC (all files)")
    hists, worst = {}, 0.0
    for name in fileset:
        cols, weight = columns[name]
        sel = agc_select(cols, AGC_CUTS)
        hists[name] = {r: histogram(v, np.full(v.size, weight)) for r, v in sel.observable.items()}
        row = []
        for region in ("4j1b", "4j2b"):
            mine, ref = hists[name][region].sum(), _reference(reference, region, name).sum()
            n = sel.observable[region].size
            row.append(
                f"{region} {mine:9.1f} vs {ref:9.1f} ({mine / ref:5.3f} ± {1 / np.sqrt(n):.3f})"
            )
            worst = max(worst, abs(mine / ref - 1))
        print(f"   {name:27s}", "  ".join(row))
    print("   ttbar variations / nominal (generated vs AGC):")
    for var in ("scaledown", "scaleup", "ME_var", "PS_var"):
        cells = []
        for region in ("4j1b", "4j2b"):
            mine = hists[f"ttbar__{var}"][region].sum() / hists["ttbar__nominal"][region].sum()
            ref = (
                _reference(reference, region, f"ttbar__{var}").sum()
                / _reference(reference, region, "ttbar__nominal").sum()
            )
            cells.append(f"{region} {mine:.3f} vs {ref:.3f}")
        print(f"   {var:10s}", "  ".join(cells))
    print("   bin by bin, % of the yield (25 bins of 20 GeV over 50-550 GeV, overflow last):")
    for name in ("ttbar__nominal", "wjets__nominal", "single_top_tW__nominal"):
        for region in ("4j1b", "4j2b"):
            mine = hists[name][region]
            ref = _reference(reference, region, name)
            print(
                f"   {name} {region} generated", np.round(100 * mine[1:] / mine.sum(), 1).tolist()
            )
            print(f"   {name} {region} AGC      ", np.round(100 * ref[1:] / ref.sum(), 1).tolist())
    if png is not None:
        _plot(hists, reference, png)
    return {"worst_yield_deviation": worst}


def _plot(hists: dict, reference: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        "ttbar__nominal",
        "ttbar__ME_var",
        "ttbar__PS_var",
        "wjets__nominal",
        "single_top_tW__nominal",
    ]
    fig, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 7), sharex=True)
    centers = 0.5 * (EDGES[1:] + EDGES[:-1])
    for col, name in enumerate(names):
        for row, (region, label) in enumerate(
            (("4j1b", "$H_T$ [GeV]"), ("4j2b", "$m_{bjj}$ [GeV]"))
        ):
            ax = axes[row, col]
            mine, ref = hists[name][region], _reference(reference, region, name)
            ax.step(centers, ref[1:-1] / ref.sum(), where="mid", label="AGC (CMS open data)")
            ax.step(centers, mine[1:-1] / mine.sum(), where="mid", label="diffana synthetic")
            ax.set_title(f"{name} {region}", fontsize=9)
            ax.set_xlabel(label)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"   shapes: {png}")


def _count_templates(columns: dict, cuts) -> dict[str, np.ndarray]:
    """Per dataset: the yield (4j1b + 4j2b) at ``cuts`` and with jet pT x 1.03."""
    out = {}
    for name, (cols, weight) in columns.items():
        nominal = sum(agc_yields(cols, weight, cuts).values())
        jes = sum(agc_yields(cols, weight, cuts._replace(jet_pt_scale=1.03)).values())
        out[name] = np.array([nominal, jes])
    return out


def count_proxy(columns: dict, cuts) -> tuple[float, dict[str, float]]:
    """Expected sigma(mu) of a counting measurement, from the Fisher information.

    For a Poisson count lambda(mu, theta) with unit-Gaussian constrained nuisance parameters theta,
    ``I = J^T J / lambda + diag(0, 1, ..., 1)`` at the Asimov point, ``J = d lambda / d(mu, theta)``
    (ME and PS symmetrised, scale (up - down)/2, JES x1.03, W+jets 2.5 %, luminosity 3 %), and
    ``sigma(mu) = sqrt((I^-1)_mu,mu)``.
    """
    t = _count_templates(columns, cuts)
    tt = t["ttbar__nominal"][0]
    nominal = [k for k in t if k.endswith("__nominal")]
    lam = sum(t[k][0] for k in nominal)
    grads = {
        "mu": tt,
        "lumi": 0.03 * lam,
        "wjets": 0.025 * t["wjets__nominal"][0],
        "ME": t["ttbar__ME_var"][0] - tt,
        "PS": t["ttbar__PS_var"][0] - tt,
        "scale": (t["ttbar__scaleup"][0] - t["ttbar__scaledown"][0]) / 2,
        "JES": sum(t[k][1] for k in nominal) - lam,
    }
    g = np.array(list(grads.values()))
    fisher = np.outer(g, g) / lam + np.diag([0.0] + [1.0] * (g.size - 1))
    return float(np.sqrt(np.linalg.inv(fisher)[0, 0])), {k: v / tt for k, v in grads.items()}


def pyhf_count_sigma(columns: dict, cuts) -> float:
    """The same counting model in pyhf (numpy backend): sigma(mu) from the Hessian of its NLL."""
    import pyhf

    t = _count_templates(columns, cuts)
    tt, wj = t["ttbar__nominal"][0], t["wjets__nominal"][0]
    st = sum(t[k][0] for k in t if k.startswith("single_top"))
    st_jes = sum(t[k][1] for k in t if k.startswith("single_top"))

    def hsys(name, up, nominal, down=None):
        down = 2 * nominal - up if down is None else down
        return {"name": name, "type": "histosys", "data": {"hi_data": [up], "lo_data": [down]}}

    lumi = {"name": "lumi", "type": "normsys", "data": {"hi": 1.03, "lo": 0.97}}
    samples = [
        {
            "name": "ttbar",
            "data": [tt],
            "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                lumi,
                hsys("ME", t["ttbar__ME_var"][0], tt),
                hsys("PS", t["ttbar__PS_var"][0], tt),
                hsys("scale", t["ttbar__scaleup"][0], tt, t["ttbar__scaledown"][0]),
                hsys("JES", t["ttbar__nominal"][1], tt),
            ],
        },
        {
            "name": "wjets",
            "data": [wj],
            "modifiers": [
                lumi,
                {"name": "wjets", "type": "normsys", "data": {"hi": 1.025, "lo": 0.975}},
                hsys("JES", t["wjets__nominal"][1], wj),
            ],
        },
        {"name": "single_top", "data": [st], "modifiers": [lumi, hsys("JES", st_jes, st)]},
    ]
    model = pyhf.Model(
        {"channels": [{"name": "sr", "samples": samples}]},
        poi_name="mu",
        modifier_settings={
            "normsys": {"interpcode": "code4"},
            "histosys": {"interpcode": "code4p"},
        },
    )
    data = np.array([tt + wj + st, *model.config.auxdata])
    x0 = np.array(model.config.suggested_init(), dtype=float)
    h = 1e-3
    n = x0.size
    hess = np.empty((n, n))
    nll = lambda p: -float(model.logpdf(p, data)[0])  # noqa: E731
    for i in range(n):
        for j in range(n):
            steps = [(h, h, 1), (h, -h, -1), (-h, h, -1), (-h, -h, 1)]
            total = 0.0
            for a, b, sign in steps:
                y = x0.copy()
                y[i] += a
                y[j] += b
                total += sign * nll(y)
            hess[i, j] = total / (4 * h * h)
    poi = model.config.poi_index
    return float(np.sqrt(np.linalg.inv(hess)[poi, poi]))


def optimum(columns: dict) -> dict:
    print("== cut optimum: expected sigma(mu), counting in 4j1b + 4j2b, one threshold at a time")
    sigma, rel = count_proxy(columns, AGC_CUTS)
    check = pyhf_count_sigma(columns, AGC_CUTS)
    print(f"   AGC cuts: sigma(mu) = {sigma:.4f} (pyhf, numpy backend, Hessian: {check:.4f})")
    print(
        "   relative effects on ttbar: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in rel.items() if k != "mu")
    )
    out = {"sigma_mu_agc_cuts": sigma, "sigma_mu_agc_cuts_pyhf": check}
    for field, grid in SCANS.items():
        values = [count_proxy(columns, AGC_CUTS._replace(**{field: x}))[0] for x in grid]
        best = int(np.argmin(values))
        where = "inside" if 0 < best < len(grid) - 1 else "AT AN END"
        print(
            f"   {field:9s} "
            + " ".join(f"{x:g}:{v:.3f}" for x, v in zip(grid, values, strict=True))
            + f"  -> minimum at {grid[best]:g} ({where})"
        )
        out[f"optimum_{field}"] = grid[best]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-sample", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--png", type=Path, default=None, help="write the shape comparison here")
    args = parser.parse_args()
    reference = json.loads(REFERENCE.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        figures = speed(tmp / "agc", args.events_per_sample)
        figures |= compression(tmp / "codecs", args.events_per_sample)
        fileset = load_fileset(tmp / "agc")
        columns = {
            name: (
                read_columns(list(entry["files"])),
                entry["metadata"]["xsec"] * LUMI / entry["metadata"]["nevts"],
            )
            for name, entry in fileset.items()
        }
        assert set(columns) == set(SAMPLES)
        figures |= calibration(fileset, columns, reference, args.png)
        figures |= optimum(columns)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
