from __future__ import annotations

import itertools

import hist
import jax
import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import norm

from diffana.errors import ConfigError
from diffana.pipeline import HARD, Regular, Variable, bin_index, kde_histogram, sigmoid_histogram
from diffana.pipeline.gradcheck import check_gradients

RNG = np.random.default_rng(11)
AGC = Regular(25, 50.0, 550.0)


def _edge_values(edges):
    """Every edge, its neighbouring floats, the linspace edges, flows, NaN and infinities."""
    around = [edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]
    lin = np.linspace(edges[0], edges[-1], len(edges))
    return np.concatenate([*around, lin, [np.nan, np.inf, -np.inf, edges[0] - 1, edges[-1] + 1]])


@pytest.mark.parametrize("seed", range(4))
def test_bin_index_equals_hist_for_regular_and_variable_axes(seed):
    rng = np.random.default_rng(seed)
    n, lo = int(rng.integers(1, 40)), float(rng.uniform(-100, 100))
    hi = lo + float(rng.uniform(0.01, 1000))
    regular = hist.axis.Regular(n, lo, hi)
    x = np.concatenate([_edge_values(regular.edges), rng.uniform(lo - 5, hi + 5, 500)])
    np.testing.assert_array_equal(Regular(n, lo, hi).edges, regular.edges)
    np.testing.assert_array_equal(bin_index(x, Regular(n, lo, hi)), regular.index(x))
    edges = np.sort(rng.uniform(lo, hi, n + 1))
    variable = hist.axis.Variable(edges)
    x = np.concatenate([_edge_values(edges), rng.uniform(lo - 5, hi + 5, 500)])
    np.testing.assert_array_equal(bin_index(x, edges), variable.index(x))


def _hist_fill(binning, x, weights):
    axis = (
        hist.axis.Regular(binning.bins, binning.start, binning.stop)
        if isinstance(binning, Regular)
        else hist.axis.Variable(np.asarray(binning.edges))
    )
    h = hist.Hist(axis, storage=hist.storage.Weight())
    h.fill(x, weight=weights)
    return h.view(flow=True)


@pytest.mark.parametrize("binning", [AGC, Variable([50.0, 70.0, 110.0, 190.0, 350.0, 550.0])])
@pytest.mark.parametrize("kernel", ["gaussian", "logistic"])
def test_hard_fill_equals_hist_bin_by_bin(binning, kernel):
    x = np.concatenate(
        [RNG.exponential(150.0, 5000) + 20.0, _edge_values(np.asarray(binning.edges))]
    )
    w = RNG.normal(1.0, 0.3, (x.size, 3))
    fill = kde_histogram if kernel == "gaussian" else sigmoid_histogram
    scale = {"bandwidth": 10.0} if kernel == "gaussian" else {"width": 10.0}
    h = fill(x, binning, hardness=HARD, weights=w, **scale)
    assert h.sumw.shape == (3, binning.bins + 2)
    for v in range(3):
        expected = _hist_fill(binning, x, w[:, v])
        np.testing.assert_array_equal(h.sumw[v], expected.value)
        np.testing.assert_array_equal(h.sumw2[v], expected.variance)
    unweighted = fill(x, binning, hardness=HARD, **scale)
    np.testing.assert_array_equal(unweighted.sumw, _hist_fill(binning, x, None).value)


def _dense_shares(x, edges, cdf):
    """Every bin's share from the kernel CDF at every edge (no window), flows included."""
    c = cdf(edges[None, :] - x[:, None])
    c = np.concatenate([np.zeros((x.size, 1)), c, np.ones((x.size, 1))], axis=1)
    return np.diff(c, axis=1)


@pytest.mark.parametrize("binning", [AGC, Variable([50.0, 60.0, 110.0, 190.0, 350.0, 550.0])])
@pytest.mark.parametrize("hardness", [0.5, 1.0, 7.0])
def test_soft_fills_equal_the_kernel_formula(binning, hardness):
    x = np.concatenate([RNG.exponential(150.0, 3000) + 20.0, np.asarray(binning.edges)])
    w = RNG.normal(1.0, 0.3, x.size)
    edges = np.asarray(binning.edges)
    for fill, cdf, scale in [
        (kde_histogram, lambda d: norm.cdf(d / (15.0 / hardness)), {"bandwidth": 15.0}),
        (sigmoid_histogram, lambda d: expit(d / (15.0 / hardness)), {"width": 15.0}),
    ]:
        shares = _dense_shares(x, edges, cdf) * w[:, None]
        full = fill(x, binning, hardness=hardness, weights=w, reach=binning.bins + 1, **scale)
        np.testing.assert_allclose(full.sumw, shares.sum(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(full.sumw2, (shares**2).sum(0), rtol=1e-12, atol=1e-12)
        # the default window truncates the kernel where it is below float32 resolution
        local = fill(x, binning, hardness=hardness, weights=w, **scale)
        np.testing.assert_allclose(local.sumw, shares.sum(0), rtol=0, atol=1e-7 * x.size)
        np.testing.assert_allclose(local.sumw.sum(), w.sum(), rtol=1e-13)


def _convergence_errors(fill, scales):
    """Soft minus hard bin contents of a quadrature sample of N(0, 1), per scale."""
    step = 1e-3
    x = np.arange(-9.0, 9.0, step) + step / 2  # bin edges fall half-way between points
    w = norm.pdf(x) * step
    binning = Regular(12, -3.0, 3.0)
    hard = np.asarray(fill(x, binning, hardness=HARD, weights=w).sumw)
    return [np.asarray(fill(x, binning, hardness=1.0 / s, weights=w).sumw) - hard for s in scales]


@pytest.mark.parametrize(("kernel", "variance"), [("gaussian", 1.0), ("logistic", np.pi**2 / 3.0)])
def test_soft_to_hard_error_falls_as_the_kernel_variance(kernel, variance):
    # For a smooth density p, E[soft bin] - E[hard bin] = (var / 2) (p'(e_hi) - p'(e_lo)) + O(s^4),
    # with var = s^2 for the Gaussian and (pi s)^2 / 3 for the logistic kernel of scale s.
    fill = kde_histogram if kernel == "gaussian" else sigmoid_histogram
    key = "bandwidth" if kernel == "gaussian" else "width"
    scales = [0.2, 0.1, 0.05]
    errors = _convergence_errors(lambda *a, **k: fill(*a, **{key: 1.0}, **k), scales)
    edges = np.linspace(-3.0, 3.0, 13)
    slope = np.concatenate([[0.0], -edges * norm.pdf(edges), [0.0]])  # p'(e) of N(0, 1)
    for s, error in zip(scales, errors, strict=True):
        predicted = variance * s**2 / 2 * np.diff(slope)
        np.testing.assert_allclose(error, predicted, rtol=0, atol=0.02 * s**2 * variance)
    rates = [np.max(np.abs(a)) / np.max(np.abs(b)) for a, b in itertools.pairwise(errors)]
    # halving the scale divides the error by 4, up to the O(s^4) term that fades with s
    np.testing.assert_allclose(rates, 4.0, rtol=0.1)
    assert abs(rates[1] - 4.0) < abs(rates[0] - 4.0)


@pytest.mark.parametrize("kernel", ["gaussian", "logistic"])
def test_fill_derivatives_match_finite_differences(kernel):
    fill = kde_histogram if kernel == "gaussian" else sigmoid_histogram
    key = "bandwidth" if kernel == "gaussian" else "width"
    x = np.array([0.3, 1.2, 1.9, 2.5, 3.7, -0.5, 4.0])
    w = np.array([1.0, 0.5, 2.0, 1.5, 1.0, 0.7, 1.1])

    def regular(x, w, start, stop, scale, hardness):
        h = fill(x, Regular(4, start, stop), hardness=hardness, weights=w, **{key: scale})
        return h.sumw, h.sumw2

    check_gradients(regular, x, w, 0.0, 4.0, 0.4, 1.3)

    def variable(x, w, edges):  # a window of 2 bins: kernel scale 0.02 against bins of 0.5
        h = fill(x, Variable(edges), hardness=1.3, weights=w, reach=2, **{key: 0.02})
        return h.sumw, h.sumw2

    x_near = np.array([0.01, 0.99, 1.52, 2.0, 2.97, 3.99, 4.0])
    check_gradients(variable, x_near, w, np.array([0.0, 1.0, 1.5, 3.0, 4.0]), step=1e-8)

    def matrix(x, w):  # concrete binning and scale: the default window
        return fill(x, Regular(8, 0.0, 4.0), hardness=2.0, weights=w, **{key: 0.4}).sumw

    check_gradients(matrix, x, np.stack([w, 2 * w, -w], axis=1))


def test_weight_matrix_equals_one_fill_per_column():
    x = RNG.exponential(150.0, 2000) + 20.0
    w = RNG.normal(1.0, 0.3, (x.size, 4))
    h = kde_histogram(x, AGC, bandwidth=20.0, hardness=2.0, weights=w)
    for v in range(4):
        one = kde_histogram(x, AGC, bandwidth=20.0, hardness=2.0, weights=w[:, v])
        np.testing.assert_allclose(h.sumw[v], one.sumw, rtol=1e-13)
        np.testing.assert_allclose(h.sumw2[v], one.sumw2, rtol=1e-13)


def test_float32_kernel_stays_in_float32_and_agrees_with_float64():
    x = RNG.exponential(150.0, 20000) + 20.0
    h32 = kde_histogram(x.astype(np.float32), AGC, bandwidth=20.0, hardness=np.float64(1.0))
    h64 = kde_histogram(x, AGC, bandwidth=20.0, hardness=1.0)
    assert h32.sumw.dtype == np.float32
    np.testing.assert_allclose(h32.sumw, h64.sumw, rtol=2e-5, atol=1e-2)
    jaxpr = str(
        jax.make_jaxpr(lambda x: kde_histogram(x, AGC, bandwidth=20.0, hardness=1.0).sumw)(
            x.astype(np.float32)
        )
    )
    assert "erf" in jaxpr
    assert "f64" not in jaxpr.split("erf")[1].split("\n")[0]


def test_reach_follows_the_bandwidth_and_traced_hardness_assumes_at_least_one():
    x = RNG.uniform(40.0, 560.0, 1000)
    full = kde_histogram(x, AGC, bandwidth=30.0, hardness=1.0, reach=26).sumw
    traced = jax.jit(lambda h: kde_histogram(x, AGC, bandwidth=30.0, hardness=h).sumw)(1.0)
    np.testing.assert_allclose(traced, full, rtol=0, atol=1e-6)


def test_bad_inputs_raise_config_errors():
    x = np.ones(3)
    with pytest.raises(ConfigError, match="positive integer number of bins"):
        Regular(0, 0.0, 1.0)
    with pytest.raises(ConfigError, match="start < stop"):
        Regular(3, 1.0, 1.0)
    with pytest.raises(ConfigError, match="strictly increasing"):
        Variable([0.0, 2.0, 1.0])
    with pytest.raises(ConfigError, match="1-d"):
        kde_histogram(np.ones((3, 2)), AGC, bandwidth=1.0, hardness=1.0)
    with pytest.raises(ConfigError, match="weights must be"):
        kde_histogram(x, AGC, bandwidth=1.0, hardness=1.0, weights=np.ones(4))
    with pytest.raises(ConfigError, match="reach"):
        kde_histogram(x, AGC, bandwidth=1.0, hardness=1.0, reach=0)
