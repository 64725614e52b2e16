"""A hard AGC selection of generated events, and the summary table ``diffana generate`` prints.

This is a small, self-contained stand-in for the AGC processor's hard pass: the AGC's object and
event selection (analysis version 2, thresholds as arguments) applied to the flat columns of
:func:`diffana.datasets.synthetic.simulate`, filling the AGC's histograms (25 bins of 20 GeV over
50-550 GeV, plus under- and overflow) of H_T in ``4j1b`` and m_bjj in ``4j2b``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import awkward as ak
import numpy as np
from rich.table import Table

from diffana.datasets.samples import PSEUDODATA, SAMPLES
from diffana.errors import InputFileError

__all__ = [
    "AGC_CUTS",
    "EDGES",
    "REGIONS",
    "Cuts",
    "Selection",
    "agc_histograms",
    "agc_select",
    "agc_yields",
    "histogram",
    "reference_yields",
    "summary_table",
]

#: the AGC's histogram binning (under- and overflow are added as the first and last bin)
EDGES = np.linspace(50.0, 550.0, 26)
REGIONS = ("4j1b", "4j2b")


class Cuts(NamedTuple):
    """The thresholds of the AGC selection (GeV for pT, CSVv2 score for b-tagging)."""

    lepton_pt: float = 30.0
    jet_pt: float = 30.0
    btag: float = 0.5
    jet_pt_scale: float = 1.0


#: the AGC's own thresholds
AGC_CUTS = Cuts()


def _per_event(mask: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Number of true entries per event of a flat mask."""
    return np.bincount(np.repeat(np.arange(counts.size), counts)[mask], minlength=counts.size)


def histogram(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fill the AGC binning: underflow, 25 bins of 20 GeV over 50-550 GeV, overflow."""
    idx = np.searchsorted(EDGES, values, side="right")  # 0 underflow ... 26 overflow
    return np.bincount(idx, weights=weights, minlength=EDGES.size + 1)


def _trijet_mass(pt, eta, phi, mass, btag, threshold: float) -> np.ndarray:
    """Mass of the trijet with the largest pT among those with at least one b-tagged jet."""
    jets = ak.zip({"pt": pt, "eta": eta, "phi": phi, "mass": mass, "btag": btag})
    j1, j2, j3 = ak.unzip(ak.combinations(jets, 3))
    px = sum(j.pt * np.cos(j.phi) for j in (j1, j2, j3))
    py = sum(j.pt * np.sin(j.phi) for j in (j1, j2, j3))
    pz = sum(j.pt * np.sinh(j.eta) for j in (j1, j2, j3))
    e = sum(np.sqrt((j.pt * np.cosh(j.eta)) ** 2 + j.mass**2) for j in (j1, j2, j3))
    tagged = np.maximum(np.maximum(j1.btag, j2.btag), j3.btag) > threshold
    trijet_pt = ak.where(tagged, np.hypot(px, py), -1.0)
    best = ak.argmax(trijet_pt, axis=1, keepdims=True)
    m2 = (e**2 - px**2 - py**2 - pz**2)[best]
    return np.sqrt(np.maximum(ak.to_numpy(ak.flatten(m2)), 0.0))


class Selection(NamedTuple):
    """The events of each region: their indices and their observable."""

    events: dict[str, np.ndarray]
    observable: dict[str, np.ndarray]


def _regions(cols: Mapping[str, np.ndarray], cuts: Cuts):
    """Selected-jet mask, jet pT (scaled) and the event masks of the regions."""
    ele = (
        (cols["Electron_pt"] > cuts.lepton_pt)
        & (np.abs(cols["Electron_eta"]) < 2.1)
        & (cols["Electron_cutBased"] == 4)
        & (cols["Electron_sip3d"] < 4)
    )
    muo = (
        (cols["Muon_pt"] > cuts.lepton_pt)
        & (np.abs(cols["Muon_eta"]) < 2.1)
        & cols["Muon_tightId"]
        & (cols["Muon_sip3d"] < 4)
        & (cols["Muon_pfRelIso04_all"] < 0.15)
    )
    jet_pt = cols["Jet_pt"] * cuts.jet_pt_scale
    jet = (jet_pt > cuts.jet_pt) & (np.abs(cols["Jet_eta"]) < 2.4) & (cols["Jet_jetId"] == 6)
    n_jet_all = cols["nJet"]
    n_lep = _per_event(ele, cols["nElectron"]) + _per_event(muo, cols["nMuon"])
    n_jet = _per_event(jet, n_jet_all)
    n_tag = _per_event(jet & (cols["Jet_btagCSVV2"] > cuts.btag), n_jet_all)
    base = (n_lep == 1) & (n_jet >= 4)
    return jet, jet_pt, {"4j1b": base & (n_tag == 1), "4j2b": base & (n_tag >= 2)}


def agc_yields(
    cols: Mapping[str, np.ndarray], weight: float, cuts: Cuts = AGC_CUTS
) -> dict[str, float]:
    """Weighted number of events in 4j1b and 4j2b (no observable needed: fast)."""
    _, _, regions = _regions(cols, cuts)
    return {r: weight * float(np.count_nonzero(mask)) for r, mask in regions.items()}


def agc_select(cols: Mapping[str, np.ndarray], cuts: Cuts = AGC_CUTS) -> Selection:
    """The AGC selection of events given as flat NanoAOD columns.

    Args:
        cols: ``nJet``, ``Jet_pt``, ... as returned by :func:`~diffana.datasets.synthetic.simulate`.
        cuts: the selection thresholds; the defaults are the AGC's. ``jet_pt_scale`` multiplies
            jet pT (the AGC's jet energy scale variation is 1.03).
    """
    jet, jet_pt, regions = _regions(cols, cuts)
    n_jet_all = cols["nJet"]
    jets = ak.unflatten(
        ak.zip({k: cols[f"Jet_{k}"] for k in ("eta", "phi", "mass", "btagCSVV2")} | {"pt": jet_pt}),
        n_jet_all,
    )[ak.unflatten(jet, n_jet_all)]
    events = {r: np.flatnonzero(mask) for r, mask in regions.items()}
    one, two = jets[events["4j1b"]], jets[events["4j2b"]]
    observable = {
        "4j1b": ak.to_numpy(ak.sum(one.pt, axis=1)),
        "4j2b": _trijet_mass(two.pt, two.eta, two.phi, two.mass, two.btagCSVV2, cuts.btag),
    }
    return Selection(events, observable)


def agc_histograms(
    cols: Mapping[str, np.ndarray], weight: float, cuts: Cuts = AGC_CUTS
) -> dict[str, np.ndarray]:
    """AGC histograms ``{"4j1b": H_T, "4j2b": m_bjj}`` of events given as flat NanoAOD columns.

    Every event weighs ``weight`` (``xsec * lumi / nevts``). Returns, per region, 27 bin contents:
    underflow, 25 bins of 20 GeV over 50-550 GeV, overflow.
    """
    sel = agc_select(cols, cuts)
    return {r: histogram(v, np.full(v.size, weight)) for r, v in sel.observable.items()}


def reference_yields(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Yields per dataset and region from an AGC histogram JSON (``histos_*_file_per_process.json``).

    The AGC names a histogram ``REGION_PROCESS`` or ``REGION_PROCESS_VARIATION``; its yield is the
    sum of its bins, under- and overflow included.
    """
    try:
        histos = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"cannot read the reference histograms {path}: {exc}; give an AGC histogram JSON file"
        raise InputFileError(msg) from exc
    out: dict[str, dict[str, float]] = {}
    for name in [*SAMPLES, "pseudodata"]:
        process, _, variation = name.partition("__")
        suffix = "" if variation in ("nominal", "") else f"_{variation}"
        for region in REGIONS:
            entry = histos.get(f"{region}_{process}{suffix}")
            if isinstance(entry, dict) and "contents" in entry:
                out.setdefault(name, {})[region] = float(np.sum(entry["contents"]))
    return out


def summary_table(dataset, reference: Mapping[str, Mapping[str, float]] | None = None) -> Table:
    """A rich table of a generated dataset: files, events, size and AGC yields per dataset."""
    table = Table(title=f"{dataset.outdir}  ({dataset.seconds:.1f} s)", title_justify="left")
    table.add_column("dataset", no_wrap=True)
    for col in ("files", "generated", "written", "MB"):
        table.add_column(col, justify="right", no_wrap=True)
    for region in REGIONS:
        table.add_column(f"{region} yield", justify="right", no_wrap=True)
        if reference:
            table.add_column("AGC ref", justify="right", style="dim", no_wrap=True)
    yields: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(r.dataset for r in dataset.files):
        mine = [r for r in dataset.files if r.dataset == name]
        yields[name] = np.array([sum(r.yields[g] for r in mine) for g in REGIONS])
        row = [
            name,
            str(len(mine)),
            f"{sum(r.generated for r in mine):,}",
            f"{sum(r.written for r in mine):,}",
            f"{sum(r.nbytes for r in mine) / 1e6:.1f}",
        ]
        table.add_row(*row, *_yield_cells(yields[name], (reference or {}).get(name), reference))
    if all(k in yields for k in PSEUDODATA):
        pseudo = sum(w * yields[k] for k, w in PSEUDODATA.items())
        row = ["pseudodata", "", "", "", ""]
        table.add_row(*row, *_yield_cells(pseudo, (reference or {}).get("pseudodata"), reference))
    return table


def _yield_cells(values, ref, reference) -> list[str]:
    cells = []
    for region, value in zip(REGIONS, values, strict=True):
        cells.append(f"{value:,.0f}")
        if reference:
            cells.append(f"{ref[region]:,.0f}" if ref and region in ref else "-")
    return cells


def command(args) -> int:
    """The ``diffana generate`` command: generate, with progress, and print the summary table."""
    from rich.console import Console
    from rich.progress import Progress

    from diffana.datasets.generate import DEFAULT_EVENTS, DEFAULT_FILES, DEFAULT_SEED, generate

    reference = reference_yields(args.reference) if args.reference else None
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 132)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("generating", total=None)
        dataset = generate(
            args.outdir,
            events_per_sample=DEFAULT_EVENTS
            if args.events_per_sample is None
            else args.events_per_sample,
            files_per_sample=DEFAULT_FILES
            if args.files_per_sample is None
            else args.files_per_sample,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            compression=args.compression,
            samples=args.samples,
            jobs=args.jobs,
            progress=lambda r: bar.update(
                task, advance=1, description=f"wrote {Path(r.path).name}"
            ),
        )
    console.print(summary_table(dataset, reference))
    console.print(f"fileset: {dataset.fileset}")
    return 0
