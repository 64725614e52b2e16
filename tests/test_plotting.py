"""Figures: what is drawn equals what was given; files are written as PNG and PDF."""

from __future__ import annotations

import subprocess
import sys

import hist
import numpy as np
import pytest
from matplotlib.figure import Figure

from diffana.plotting import (
    plot_polish,
    plot_soft_vs_hard,
    plot_stacked,
    plot_trajectories,
    save,
)


def _hist(values, edges=(0.0, 1.0, 2.0, 3.0)) -> hist.Hist:
    h = hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
    h.view()["value"] = values
    h.view()["variance"] = values
    return h


@pytest.fixture(scope="module")
def stacked() -> Figure:
    stacks = {
        "A": {"small": _hist([1.0, 2.0, 3.0]), "big": _hist([10.0, 20.0, 5.0])},
        "B": {"small": _hist([0.5, 0.5, 0.5]), "big": _hist([4.0, 3.0, 2.0])},
    }
    data = {"A": _hist([12.0, 21.0, 9.0]), "B": _hist([4.0, 4.0, 2.0])}
    return plot_stacked(stacks, data, labels={"A": "$H_T$ [GeV]"}, title="t")


def _steps_tops(ax) -> list[np.ndarray]:
    """The upper edges of the filled stairs drawn on ``ax``, in drawing order."""
    from matplotlib.patches import StepPatch

    return [np.asarray(p.get_data().values) for p in ax.patches if isinstance(p, StepPatch)]


def test_stacked_histograms_sum_the_samples_and_show_the_data(stacked):
    axes = stacked.axes
    assert len(axes) == 2
    tops = sorted(_steps_tops(axes[0]), key=lambda t: t.sum())
    assert len(tops) == 2
    np.testing.assert_allclose(tops[0], [1.0, 2.0, 3.0])  # the smallest sample at the bottom
    np.testing.assert_allclose(tops[1], [11.0, 22.0, 8.0])  # the sum of both on top
    points = [line for line in axes[0].lines if len(line.get_xdata()) == 3]
    assert any(np.allclose(p.get_ydata(), [12.0, 21.0, 9.0]) for p in points)
    assert axes[0].get_xlabel() == "$H_T$ [GeV]"
    assert axes[1].get_xlabel() == "B"
    assert stacked._suptitle.get_text() == "t"
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert labels == ["big", "small", "pseudo-data"]  # legend from the top of the stack down


HISTORY = [
    {"step": k, "hardness": 1.0 + k, "objective": 1.0 / (k + 1), "params": {"a": k, "b": -k}}
    for k in range(5)
]
HISTORY[2]["hard_objective"] = 0.9


def test_trajectories_plot_objective_and_each_parameter():
    fig = plot_trajectories(HISTORY, objective="sigma", units={"a": "GeV"}, hard={4: 0.3})
    axes = fig.axes
    assert len(axes) == 3
    soft, hard = axes[0].lines[:2]
    np.testing.assert_allclose(soft.get_ydata(), [1.0, 0.5, 1 / 3, 0.25, 0.2])
    np.testing.assert_allclose(hard.get_xdata(), [2, 4])
    np.testing.assert_allclose(hard.get_ydata(), [0.9, 0.3])
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(axes[2].lines[0].get_ydata(), [0, -1, -2, -3, -4])
    assert axes[1].get_ylabel() == "a [GeV]"
    assert axes[2].get_ylabel() == "b"


def test_soft_vs_hard_shows_both_and_the_hardness():
    fig = plot_soft_vs_hard(HISTORY, objective="sigma", hard={0: 1.2})
    main, twin = fig.axes
    np.testing.assert_allclose(main.lines[1].get_xdata(), [0, 2])  # hard points sorted by step
    np.testing.assert_allclose(main.lines[1].get_ydata(), [1.2, 0.9])
    np.testing.assert_allclose(twin.lines[0].get_ydata(), [1, 2, 3, 4, 5])


def test_polish_plot_shows_each_line_and_the_choice():
    lines = [
        {"parameter": "a", "sweep": 0, "through": {"a": 1.0, "b": 0.5},
         "values": [0.0, 1.0, 2.0], "objective": [0.3, 0.2, 0.25]},
        {"parameter": "b", "sweep": 0, "through": {"a": 1.0, "b": 0.5},
         "values": [0.0, 0.5, 1.0], "objective": [0.15, 0.2, float("nan")]},
    ]  # fmt: skip
    fig = plot_polish(lines, {"a": 1.0, "b": 0.0}, objective="sigma", units={"a": "GeV"})
    first, second = fig.axes
    np.testing.assert_allclose(first.lines[0].get_ydata(), [0.3, 0.2, 0.25])
    np.testing.assert_allclose(first.lines[1].get_ydata(), [0.2])  # where the line started
    np.testing.assert_allclose(first.lines[2].get_xdata(), [1.0, 1.0])  # the value chosen
    np.testing.assert_allclose(second.lines[2].get_xdata(), [0.0, 0.0])
    assert first.get_xlabel() == "a [GeV]"
    assert second.get_ylabel() == "sigma (hard)"


def test_save_writes_png_and_pdf(stacked, tmp_path):
    paths = save(stacked, tmp_path / "sub" / "stacked", ["png", "pdf"])
    assert [p.name for p in paths] == ["stacked.png", "stacked.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_save_draws_math_labels_without_font_warnings(tmp_path):
    # the $H_T$ label is laid out when the file is written; matplotlib's default math fonts
    # (outside the figures' style) look for a 'cursive' family and warn when it is missing. In a
    # fresh process: matplotlib caches font lookups, and warns only at the first.
    script = f"""
import hist
from diffana.plotting import plot_stacked, save
h = hist.Hist(hist.axis.Regular(3, 0.0, 3.0), storage=hist.storage.Weight())
h.fill([0.5, 1.5, 1.5])
fig = plot_stacked({{"A": {{"s": h}}}}, {{"A": h}}, labels={{"A": "$H_T$ [GeV]"}})
save(fig, {str(tmp_path / "stacked")!r}, ["png"])
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert (tmp_path / "stacked.png").exists()
    assert "findfont" not in run.stderr, run.stderr
