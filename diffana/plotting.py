"""Figures of histograms and of the optimisation, with matplotlib and mplhep.

Every function returns a :class:`matplotlib.figure.Figure` made without ``pyplot`` (no GUI backend
is touched; in a notebook the figure displays inline); :func:`save` writes it as PNG and/or PDF.

- :func:`plot_stacked`: per region, the samples stacked with the (pseudo-)data on top;
- :func:`plot_trajectories`: the objective and every parameter against the optimisation step;
- :func:`plot_soft_vs_hard`: the soft objective of every step beside the hard objective wherever
  it was evaluated, and the hardness schedule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import mplhep
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_polish", "plot_soft_vs_hard", "plot_stacked", "plot_trajectories", "save"]

_STYLE = [mplhep.style.CMS, {"font.size": 14, "axes.titlesize": 14, "legend.fontsize": 11}]


def save(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``stem.png`` (and/or ``.pdf``); returns the paths written.

    The figure is drawn in the style it was made in: text such as ``$H_T$`` is laid out when the
    file is written, and outside the style matplotlib's default math fonts ask for a ``cursive``
    family most machines do not have (a warning per figure).

    Examples:
        >>> import tempfile
        >>> fig = Figure(); _ = fig.subplots().plot([0, 1])
        >>> [p.suffix for p in save(fig, Path(tempfile.mkdtemp()) / "x", ["png", "pdf"])]
        ['.png', '.pdf']
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with mpl.style.context(_STYLE):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, dpi=110 if fmt == "png" else None, bbox_inches="tight")
            paths.append(path)
    return paths


def plot_stacked(
    stacks: Mapping[str, Mapping[str, Any]],
    data: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None = None,
    title: str = "",
) -> Figure:
    """Stacked samples and data, one panel per region.

    Args:
        stacks: region -> {sample label: histogram} (``hist.Hist`` or UHI-plottable), drawn
            bottom-up in the given order.
        data: region -> data histogram (drawn as points with sqrt(N) errors).
        labels: region -> x-axis label (e.g. ``"$H_T$ [GeV]"``).
        title: a title over the panels.
    """
    regions = list(stacks)
    with mpl.style.context(_STYLE):
        fig = Figure(figsize=(7.0 * len(regions), 5.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(regions), squeeze=False)[0])
        for ax, region in zip(axes, regions, strict=True):
            samples = stacks[region]
            mplhep.histplot(
                list(samples.values()),
                ax=ax,
                stack=True,
                histtype="fill",
                label=list(samples),
                edgecolor="black",
                linewidth=0.5,
            )
            observed = data[region]
            values = np.asarray(observed.values())
            mplhep.histplot(
                observed,
                ax=ax,
                histtype="errorbar",
                color="black",
                label="pseudo-data",
                yerr=np.sqrt(np.clip(values, 0, None)),
            )
            ax.set_xlabel((labels or {}).get(region, region))
            ax.set_ylabel("events / bin")
            ax.text(0.04, 0.95, region, transform=ax.transAxes, va="top", fontweight="bold")
            ax.legend(loc="upper right")
            ax.set_ylim(0, 1.35 * max(float(np.max(values)), 1e-9))
        if title:
            fig.suptitle(title, y=1.0, va="bottom")
    return fig


def _hard_points(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps = [r["step"] for r in history if r.get(key) is not None]
    return steps, [r[key] for r in history if r.get(key) is not None]


def plot_trajectories(
    history: Sequence[Mapping[str, Any]],
    *,
    objective: str = "objective",
    units: Mapping[str, str] | None = None,
    hard: Mapping[int, float] | None = None,
) -> Figure:
    """The objective and each parameter against the step.

    Args:
        history: the loop's records (``step``, ``objective``, ``params``; ``hard_objective``
            where a hard evaluation was made).
        objective: the objective's name for the axis label.
        units: parameter name -> unit for the axis labels.
        hard: extra hard objective values by step (e.g. the initial and final hard evaluation).
    """
    names = list(history[0]["params"]) if history else []
    steps = [r["step"] for r in history]
    with mpl.style.context(_STYLE):
        fig = Figure(figsize=(7.0, 2.4 * (1 + len(names))), layout="constrained")
        axes = fig.subplots(1 + len(names), 1, sharex=True, squeeze=False)[:, 0]
        axes[0].plot(steps, [r["objective"] for r in history], "o-", ms=3, label="soft")
        hard_steps, hard_values = _hard_points(history, "hard_objective")
        extra = dict(hard or {})
        hard_steps, hard_values = hard_steps + list(extra), hard_values + list(extra.values())
        if hard_steps:
            axes[0].plot(hard_steps, hard_values, "s", color="black", label="hard")
        axes[0].set_ylabel(objective)
        axes[0].legend()
        for ax, name in zip(axes[1:], names, strict=True):
            ax.plot(steps, [r["params"][name] for r in history], "o-", ms=3)
            unit = (units or {}).get(name, "")
            ax.set_ylabel(f"{name} [{unit}]" if unit else name, fontsize="small")
        axes[-1].set_xlabel("step")
    return fig


def plot_soft_vs_hard(
    history: Sequence[Mapping[str, Any]],
    *,
    objective: str = "objective",
    hard: Mapping[int, float] | None = None,
) -> Figure:
    """The soft objective per step beside the hard one, and the hardness on a second axis."""
    steps = [r["step"] for r in history]
    with mpl.style.context(_STYLE):
        fig = Figure(figsize=(7.0, 5.0), layout="constrained")
        ax = fig.subplots()
        ax.plot(steps, [r["objective"] for r in history], "o-", ms=3, label="soft (optimised)")
        hard_steps, hard_values = _hard_points(history, "hard_objective")
        extra = dict(hard or {})
        hard_steps, hard_values = hard_steps + list(extra), hard_values + list(extra.values())
        if hard_steps:
            order = np.argsort(hard_steps)
            ax.plot(
                np.asarray(hard_steps)[order],
                np.asarray(hard_values)[order],
                "s--",
                color="black",
                label="hard (boolean cuts)",
            )
        ax.set_xlabel("step")
        ax.set_ylabel(objective)
        twin = ax.twinx()
        twin.plot(steps, [r["hardness"] for r in history], ":", color="grey")
        twin.set_ylabel("hardness", color="grey")
        ax.legend()
    return fig


def plot_polish(
    lines: Sequence[Mapping[str, Any]],
    chosen: Mapping[str, float],
    *,
    objective: str = "objective",
    units: Mapping[str, str] | None = None,
) -> Figure:
    """The hard objective along each line of the polish (one panel per parameter, one curve per
    sweep), the line's starting value and the value chosen marked."""
    names = list(dict.fromkeys(line["parameter"] for line in lines))
    with mpl.style.context(_STYLE):
        fig = Figure(figsize=(4.0 * max(len(names), 1), 3.6), layout="constrained")
        axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
        for ax, name in zip(axes, names, strict=False):
            for line in (ln for ln in lines if ln["parameter"] == name):
                values = np.asarray(line["values"])
                stats = np.asarray(line["objective"], dtype=float)
                (curve,) = ax.plot(values, stats, "o-", ms=3, label=f"sweep {line['sweep'] + 1}")
                start = line["through"][name]
                ax.plot([start], stats[values == start], "s", color=curve.get_color(), mfc="none")
            ax.axvline(chosen[name], color="black", ls=":", label="chosen")
            unit = (units or {}).get(name, "")
            ax.set_xlabel(f"{name} [{unit}]" if unit else name)
            ax.set_ylabel(f"{objective} (hard)")
        axes[0].legend(fontsize="small")
    return fig
