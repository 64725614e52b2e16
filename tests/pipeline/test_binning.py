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


FILLS = {"gaussian": (kde_histogram, "bandwidth"), "logistic": (sigmoid_histogram, "width")}


def _fill(kernel, x, binning, scale, weights=None, *, hardness, reach=None):
    fill, key = FILLS[kernel]
    h = fill(x, binning, hardness=hardness, weights=weights, reach=reach, **{key: scale})
    return h.sumw, h.sumw2


# One compilation per (kernel, binning, hardness, reach, shape): tests share these and their data.
fill = jax.jit(_fill, static_argnums=0, static_argnames=("hardness", "reach"))
VARIABLE = Variable([50.0, 60.0, 110.0, 190.0, 350.0, 550.0])
X = np.concatenate([RNG.exponential(150.0, 2000) + 20.0, _edge_values(np.asarray(AGC.edges))])
W = RNG.normal(1.0, 0.3, (X.size, 3))


@pytest.mark.parametrize("binning", [AGC, VARIABLE])
def test_hard_fill_equals_hist_bin_by_bin(binning):
    x = np.concatenate([X, _edge_values(np.asarray(binning.edges))])
    w = np.concatenate([W, np.ones((x.size - X.size, 3))])
    sumw, sumw2 = fill("gaussian", x, binning, 10.0, w, hardness=HARD)
    assert sumw.shape == (3, binning.bins + 2)
    for v in range(3):
        expected = _hist_fill(binning, x, w[:, v])
        np.testing.assert_array_equal(sumw[v], expected.value)
        np.testing.assert_array_equal(sumw2[v], expected.variance)
    # the kernel and its scale play no part in the hard twin; no weights means unit weights
    unweighted = fill("logistic", x, binning, 3.0, hardness=HARD)[0]
    np.testing.assert_array_equal(unweighted, _hist_fill(binning, x, None).value)


def _dense_shares(x, edges, cdf):
    """Every bin's share from the kernel CDF at every edge (no window), flows included."""
    c = cdf(edges[None, :] - x[:, None])
    c = np.concatenate([np.zeros((x.size, 1)), c, np.ones((x.size, 1))], axis=1)
    return np.diff(c, axis=1)


CDFS = {"gaussian": norm.cdf, "logistic": expit}


@pytest.mark.parametrize("kernel", ["gaussian", "logistic"])
@pytest.mark.parametrize(("binning", "hardness"), [(AGC, 0.5), (AGC, 7.0), (VARIABLE, 1.0)])
def test_soft_fills_equal_the_kernel_formula(kernel, binning, hardness):
    x, w = X[np.isfinite(X)], W[np.isfinite(X), 0]
    scale = 15.0 / hardness
    shares = (
        _dense_shares(x, np.asarray(binning.edges), lambda d: CDFS[kernel](d / scale)) * w[:, None]
    )
    # The default window truncates the kernel where it is below float64 resolution.
    sumw, sumw2 = fill(kernel, x, binning, 15.0, w, hardness=hardness)
    np.testing.assert_allclose(sumw, shares.sum(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sumw2, (shares**2).sum(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sum(sumw), w.sum(), rtol=1e-13)


# A quadrature sample of N(0, 1): bin edges fall half-way between points.
STEP = 1e-3
GRID = np.arange(-9.0, 9.0, STEP) + STEP / 2
DENSITY = norm.pdf(GRID) * STEP
convergence_fill = jax.jit(
    lambda kernel, hardness: _fill(
        kernel, GRID, Regular(12, -3.0, 3.0), 1.0, DENSITY, hardness=hardness, reach=13
    )[0],
    static_argnums=0,
)


@pytest.mark.parametrize(("kernel", "variance"), [("gaussian", 1.0), ("logistic", np.pi**2 / 3.0)])
def test_soft_to_hard_error_falls_as_the_kernel_variance(kernel, variance):
    # For a smooth density p, E[soft bin] - E[hard bin] = (var / 2) (p'(e_hi) - p'(e_lo)) + O(s^4),
    # with var = s^2 for the Gaussian and (pi s)^2 / 3 for the logistic kernel of scale s.
    hard = fill(kernel, GRID, Regular(12, -3.0, 3.0), 1.0, DENSITY, hardness=HARD)[0]
    scales = [0.2, 0.1, 0.05]
    errors = [np.asarray(convergence_fill(kernel, 1.0 / s)) - hard for s in scales]
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
    x = np.array([0.3, 1.2, 1.9, 2.5, 3.7, -0.5, 4.0])
    w = np.array([1.0, 0.5, 2.0, 1.5, 1.0, 0.7, 1.1])
    w = np.stack([w, -2 * w], axis=1)  # a weight matrix: two variations

    def regular(x, w, start, stop, scale, hardness):  # traced binning: every edge
        return _fill(kernel, x, Regular(4, start, stop), scale, w, hardness=hardness)

    check_gradients(regular, x, w, 0.0, 4.0, 0.4, 1.3)

    def variable(x, w, edges):  # a window of 2 bins: kernel scale 0.02 against bins of 0.5
        return _fill(kernel, x, Variable(edges), 0.02, w, hardness=1.3, reach=2)

    x_near = np.array([0.01, 0.99, 1.52, 2.0, 2.97, 3.99, 4.0])
    check_gradients(variable, x_near, w[:, 0], np.array([0.0, 1.0, 1.5, 3.0, 4.0]), step=1e-8)


def test_weight_matrix_equals_one_fill_per_column():
    matrix = fill("gaussian", X, AGC, 10.0, W, hardness=2.0)
    for v in range(W.shape[1]):
        one = fill("gaussian", X, AGC, 10.0, W[:, v], hardness=2.0)
        np.testing.assert_allclose(matrix[0][v], one[0], rtol=1e-13)
        np.testing.assert_allclose(matrix[1][v], one[1], rtol=1e-13)


def test_float32_kernel_stays_in_float32_and_agrees_with_float64():
    x = X[np.isfinite(X)]
    h32 = fill("gaussian", x.astype(np.float32), AGC, 10.0, hardness=1.0)[0]
    h64 = fill("gaussian", x, AGC, 10.0, hardness=1.0)[0]
    assert h32.dtype == np.float32
    np.testing.assert_allclose(h32, h64, rtol=2e-5, atol=1e-3)
    jaxpr = str(
        jax.make_jaxpr(lambda x: _fill("gaussian", x, AGC, 10.0, hardness=1.0))(
            x.astype(np.float32)
        )
    )
    assert "erf" in jaxpr
    assert "f64" not in jaxpr.split("erf")[1].split("\n")[0]


def test_traced_hardness_assumes_at_least_one_for_the_window():
    x = X[np.isfinite(X)]
    shares = _dense_shares(x, np.asarray(AGC.edges), lambda d: norm.cdf(d / 30.0))
    traced = jax.jit(lambda h: _fill("gaussian", x, AGC, 30.0, hardness=h)[0])(1.0)
    np.testing.assert_allclose(traced, shares.sum(0), rtol=1e-12, atol=1e-12)


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
