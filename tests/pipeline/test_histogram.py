from __future__ import annotations

import hist
import jax
import matplotlib
import numpy as np
import pytest
from uhi.typing.plottable import PlottableHistogram

from diffana.pipeline import HARD, Regular, SoftHistogram, Variable, kde_histogram

matplotlib.use("Agg")

RNG = np.random.default_rng(23)
X = RNG.exponential(150.0, 3000) + 20.0
W = RNG.normal(1.0, 0.2, (X.size, 2))
AGC = Regular(25, 50.0, 550.0)
# One compilation per binning, hardness and weight shape, shared by the tests.
fill = jax.jit(
    lambda x, binning, hardness, weights=None: kde_histogram(
        x, binning, bandwidth=10.0, hardness=hardness, weights=weights, axis_name="ht"
    ),
    static_argnames="hardness",
)


def _filled(binning, weights):
    axis = (
        hist.axis.Regular(binning.bins, binning.start, binning.stop, name="ht")
        if isinstance(binning, Regular)
        else hist.axis.Variable(np.asarray(binning.edges), name="ht")
    )
    h = hist.Hist(axis, storage=hist.storage.Weight())
    h.fill(X, weight=weights)
    return h


@pytest.mark.parametrize(
    "binning", [Regular(25, 50.0, 550.0), Variable([50.0, 90.0, 200.0, 550.0])]
)
def test_to_hist_round_trips_a_hard_fill_with_flow(binning):
    h = fill(X, binning, HARD, W[:, 0])
    expected = _filled(binning, W[:, 0])
    got = h.to_hist()
    assert type(got.axes[0]) is type(expected.axes[0])
    np.testing.assert_array_equal(got.axes[0].edges, expected.axes[0].edges)
    np.testing.assert_array_equal(got.view(flow=True).value, expected.view(flow=True).value)
    np.testing.assert_array_equal(got.view(flow=True).variance, expected.view(flow=True).variance)
    assert got.axes[0].label == "ht"


def test_leading_axes_become_integer_variation_axes():
    h = fill(X, AGC, HARD, W)
    got = h.to_hist()
    assert got.axes.name == ("variation0", "ht")
    for v in range(2):
        expected = _filled(Regular(25, 50.0, 550.0), W[:, v])
        np.testing.assert_array_equal(
            got[v, :].view(flow=True).value, expected.view(flow=True).value
        )
    assert [len(a) for a in h.axes] == [2, 25]
    assert h.axes[0].traits.discrete
    assert not h.axes[1].traits.discrete


def test_uhi_protocol_values_variances_counts():
    h = fill(X, AGC, 2.0, W[:, 0])
    assert isinstance(h, PlottableHistogram)
    assert h.kind == "COUNT"
    sumw, sumw2 = np.asarray(h.sumw), np.asarray(h.sumw2)
    np.testing.assert_array_equal(h.values(), sumw[1:-1])
    np.testing.assert_array_equal(h.values(flow=True), sumw)
    np.testing.assert_array_equal(h.variances(), sumw2[1:-1])
    np.testing.assert_allclose(h.counts(), sumw[1:-1] ** 2 / sumw2[1:-1])
    axis = h.axes[0]
    assert len(axis) == 25
    assert axis[0] == (50.0, 70.0)
    assert axis[-1] == (530.0, 550.0)
    assert list(axis)[3] == (110.0, 130.0)
    with pytest.raises(IndexError):
        axis[25]
    empty = SoftHistogram(np.zeros(4), np.zeros(4), np.array([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(empty.counts(), [0.0, 0.0])


def test_mplhep_plots_a_soft_histogram():
    import matplotlib.pyplot as plt
    import mplhep

    h = fill(X, AGC, 2.0, W[:, 0])
    fig, ax = plt.subplots()
    artists = mplhep.histplot(h, ax=ax, yerr=True)
    heights = artists[0].stairs.get_data().values
    np.testing.assert_allclose(heights, np.asarray(h.sumw)[1:-1])
    errors = artists[0].errorbar.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in errors], 2 * np.sqrt(h.variances()))
    plt.close(fig)


def test_soft_histograms_add_and_pass_through_jit():
    first, second = fill(X[:1500], AGC, 2.0, W[:1500, 0]), fill(X[1500:], AGC, 2.0, W[1500:, 0])
    whole = fill(X, AGC, 2.0, W[:, 0])
    total = jax.jit(lambda a, b: a + b)(first, second)
    np.testing.assert_allclose(total.sumw, whole.sumw, rtol=1e-12)
    np.testing.assert_allclose(total.sumw2, whole.sumw2, rtol=1e-12)
    assert total.nbins == 25
    assert total.axis_name == "ht"
