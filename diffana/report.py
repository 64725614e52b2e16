"""The hard re-evaluation: ordinary cuts at some parameters, and everything a result needs.

At given parameters (the AGC's cuts, the optimised ones) :func:`hard_evaluation` runs the
processor with exact (boolean) cuts and returns:

- the histograms as ``hist.Hist`` in the processor's binning (the AGC's 25 bins of 20 GeV over
  50-550 GeV, flow bins included) and in each region's model binning (the AGC's 11 bins of 40 GeV
  over 110-550 GeV), per region, sample and variation, pseudo-data included;
- the pyhf JSON workspace built from them (what ``pyhf`` or ``diffana fit`` reads);
- the objective evaluated hard, and the maximum-likelihood fit of the pseudo-data with
  :mod:`diffana.stats` (POI ± its inverse-Hessian uncertainty).

:func:`write_hard` writes them to a folder (``workspace_<tag>.json``,
``histograms_<tag>.json``, ``stacked_<tag>.png``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import hist
import numpy as np

from diffana.pipeline.objective import Objective
from diffana.processors.output import histograms_json

__all__ = [
    "HardEvaluation",
    "fit_workspace",
    "hard_evaluation",
    "hard_result",
    "rebinned",
    "write_hard",
]


class HardEvaluation(NamedTuple):
    """The hard result at one parameter point."""

    params: dict[str, float]
    histograms: dict[str, hist.Hist]  # processor binning, flow bins included
    model_histograms: dict[str, hist.Hist]  # each region's model binning
    workspace: dict[str, Any]
    objective: float
    fit: dict[str, Any]
    notes: list[str]  # what the model changed: empty samples left out, empty bins merged


def _to_hist(
    values: np.ndarray, variances: np.ndarray, edges: Sequence[float], label: str
) -> hist.Hist:
    edges = np.asarray(edges, dtype=float)
    widths = np.diff(edges)
    if np.allclose(widths, widths[0]):
        axis = hist.axis.Regular(len(widths), edges[0], edges[-1], name="observable", label=label)
    else:
        axis = hist.axis.Variable(edges, name="observable", label=label)
    out = hist.Hist(axis, storage=hist.storage.Weight())
    view = out.view(flow=True)
    flow = values.shape[-1] == len(edges) + 1
    target = view if flow else view[1:-1]
    target["value"], target["variance"] = values, variances
    return out


def rebinned(objective: Objective, histograms: Mapping[str, Any]) -> dict[str, hist.Hist]:
    """Every histogram the model reads (data too) in its region's model binning, no flow bins.

    Missing data histograms are made as the objective makes them (e.g. the AGC pseudo-data).
    """
    hists = objective.complete(histograms)
    out = {}
    for entry in objective.entries:
        h = hists[entry.name]
        variances = h.values if h.variances is None else h.variances
        out[entry.name] = _to_hist(
            np.asarray(h.values), np.asarray(variances), h.edges, entry.region.variable or ""
        )
    return out


def fit_workspace(workspace: Mapping[str, Any]) -> dict[str, Any]:
    """Maximum-likelihood fit of a workspace's observations with :mod:`diffana.stats`.

    Returns:
        ``{"poi": name, name: best fit, "uncertainty": inverse-Hessian uncertainty of the POI,
        "converged": bool, "twice_nll": float, "bestfit": {parameter: value}}``.
    """
    from diffana.stats import Workspace
    from diffana.stats.fit import fit, parameter_uncertainties

    ws = Workspace(dict(workspace))
    model = ws.model()
    data = np.asarray(ws.data(model), dtype=float)
    result = fit(model.structure, model.yields, data)
    sigma, _ = parameter_uncertainties(model.structure, model.yields, result.bestfit, data)
    poi = model.structure.poi_index
    name = model.structure.poi_name
    bestfit = np.asarray(result.bestfit, dtype=float)
    return {
        "poi": name,
        name: float(bestfit[poi]),
        "uncertainty": float(np.asarray(sigma)[poi]),
        "converged": bool(result.converged),
        "twice_nll": float(result.twice_nll),
        "bestfit": dict(zip(model.config.par_names, bestfit.tolist(), strict=True)),
    }


def hard_result(
    objective: Objective,
    params: Mapping[str, float],
    histograms: Mapping[str, Any],
) -> HardEvaluation:
    """Histograms, workspace, objective and fit from the hard histograms of ``params``.

    Samples with no events in a region are left out of it and bins that no nominal sample fills
    are merged into a neighbour, in the model histograms, the workspace and the objective
    (:meth:`Objective.merged`); ``notes`` says which.
    """
    merged, notes = objective.merged(histograms)
    workspace = merged.workspace(histograms)
    try:
        fit = fit_workspace(workspace)
    except Exception as exc:  # a degenerate model is reported, not hidden
        fit = {"error": f"{type(exc).__name__}: {exc}"}
    return HardEvaluation(
        dict(params),
        {name: h.to_hist() for name, h in histograms.items()},
        rebinned(merged, histograms),
        workspace,
        merged.value(histograms),
        fit,
        notes,
    )


def hard_evaluation(
    engine: Any, objective: Objective, params: Mapping[str, float]
) -> HardEvaluation:
    """Run the hard pass at ``params`` on the engine and derive everything (see :func:`hard_result`)."""
    return hard_result(objective, params, engine.evaluate(dict(params), hardness=math.inf))


def _stacks(
    objective: Objective, model_histograms: Mapping[str, hist.Hist]
) -> tuple[dict[str, dict[str, hist.Hist]], dict[str, hist.Hist], dict[str, str]]:
    stacks: dict[str, dict[str, hist.Hist]] = {}
    data: dict[str, hist.Hist] = {}
    labels: dict[str, str] = {}
    for entry in objective.entries:
        region = entry.region.name
        labels[region] = entry.region.variable or region
        if entry.sample.data:
            data[region] = model_histograms[entry.name]
        elif entry.variation == "":
            stacks.setdefault(region, {})[entry.sample.name] = model_histograms[entry.name]
    # smallest samples at the bottom of the stack
    stacks = {
        r: dict(sorted(s.items(), key=lambda kv: float(kv[1].values().sum())))
        for r, s in stacks.items()
    }
    return stacks, data, labels


def write_hard(
    result: HardEvaluation,
    objective: Objective,
    folder: str | Path,
    tag: str,
    *,
    plots: bool = True,
    formats: Sequence[str] = ("png",),
) -> dict[str, Any]:
    """Write the workspace, histograms (both binnings) and the stacked plot of ``result``.

    Returns:
        The paths written, by kind (``workspace``, ``histograms``, ``model_histograms``,
        ``stacked``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Any] = {}
    for key, doc in (
        ("workspace", result.workspace),
        ("histograms", histograms_json(result.histograms)),
        ("model_histograms", histograms_json(result.model_histograms)),
    ):
        path = folder / f"{key}_{tag}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        paths[key] = str(path)
    if plots:
        from diffana.plotting import plot_stacked, save

        stacks, data, labels = _stacks(objective, result.model_histograms)
        fitted = result.fit.get("uncertainty")
        title = f"{tag}: " + ", ".join(f"{k} = {v:.4g}" for k, v in result.params.items())
        if fitted is not None:
            title += f"\n{result.fit['poi']} = {result.fit[result.fit['poi']]:.3f} ± {fitted:.3f}"
        fig = plot_stacked(stacks, data, labels=labels, title=title)
        paths["stacked"] = [str(p) for p in save(fig, folder / f"stacked_{tag}", formats)]
    return paths
