from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from scipy.special import expit

from diffana.errors import ConfigError
from diffana.pipeline import HARD, at_least, count_distribution, cut, exactly, object_sum
from diffana.pipeline.gradcheck import check_gradients

RNG = np.random.default_rng(3)


def _enumerate_counts(p):
    """P(N = c) by summing over all 2^J pass/fail outcomes of independent objects."""
    out = np.zeros(p.size + 1)
    for outcome in itertools.product([0, 1], repeat=p.size):
        b = np.array(outcome)
        out[b.sum()] += np.prod(np.where(b == 1, p, 1 - p))
    return out


@pytest.mark.parametrize("max_count", [1, 2, 4, 6])
def test_count_distribution_equals_enumeration(max_count):
    p = RNG.uniform(size=(5, 6))
    p[0, 3:] = 0.0  # padding
    got = np.asarray(count_distribution(p, max_count))
    for event, probs in zip(p, got, strict=True):
        exact = _enumerate_counts(event)
        np.testing.assert_allclose(probs[:max_count], exact[:max_count], rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(probs[max_count], exact[max_count:].sum(), rtol=1e-13)


def test_long_object_axes_scan_and_match_polynomial_products():
    p = RNG.uniform(size=(3, 40))
    got = np.asarray(count_distribution(p, 5))
    for event, probs in zip(p, got, strict=True):
        poly = np.array([1.0])
        for pj in event:  # coefficients of prod_j (1 - p_j + p_j z)
            poly = np.convolve(poly, [1 - pj, pj])
        np.testing.assert_allclose(probs, [*poly[:5], poly[5:].sum()], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("method", ["poisson_binomial", "sigmoid"])
def test_hard_counts_equal_numpy_counts(method):
    passed = RNG.uniform(size=(500, 8)) < 0.4
    weights = passed.astype(float)
    counts = passed.sum(axis=1)
    for n in range(5):
        got = at_least(weights, n, hardness=HARD, method=method)
        np.testing.assert_array_equal(got, (counts >= n).astype(float))
        got = exactly(weights, n, hardness=HARD, method=method)
        np.testing.assert_array_equal(got, (counts == n).astype(float))


def test_sigmoid_method_is_a_sigmoid_of_the_soft_count():
    p = RNG.uniform(size=(50, 8))
    s = p.sum(axis=1)
    np.testing.assert_allclose(
        at_least(p, 4, hardness=2.0, method="sigmoid", width=0.5), expit((s - 3.5) * 4.0)
    )
    np.testing.assert_allclose(
        exactly(p, 4, hardness=2.0, method="sigmoid", width=0.5),
        expit((s - 3.5) * 4.0) * expit((4.5 - s) * 4.0),
    )


def test_poisson_binomial_is_the_expected_hard_count_under_logistic_threshold_noise():
    # p_j = sigmoid((x_j - t) h / w) is P(x_j > t + e_j) for e_j ~ Logistic(0, w / h), so the
    # Poisson-binomial tail is the expected hard selection: check by Monte Carlo.
    x = np.array([22.0, 27.0, 31.0, 35.0, 60.0, 0.0])
    mask = np.array([True, True, True, True, True, False])
    t, w, h = 30.0, 5.0, 1.5
    p = np.asarray(cut(x, t, width=w, hardness=h, mask=mask))
    noise = np.random.default_rng(0).logistic(0.0, w / h, size=(400_000, x.size))
    hard_counts = ((x > t + noise) & mask).sum(axis=1)
    for n in range(6):
        mc = np.mean(hard_counts >= n)
        error = np.sqrt(mc * (1 - mc) / hard_counts.size) + 1e-12
        assert abs(float(at_least(p[None], n, hardness=h)[0]) - mc) < 4 * error
        mc = np.mean(hard_counts == n)
        error = np.sqrt(mc * (1 - mc) / hard_counts.size) + 1e-12
        assert abs(float(exactly(p[None], n, hardness=h)[0]) - mc) < 4 * error


def test_soft_counts_converge_to_the_hard_count():
    # |P_soft - 1[hard]| <= sum_j |p_j - hard_j| (the count is 1-Lipschitz in each p_j), and the
    # per-object error falls as sigmoid(-|x - t| h / w).
    x = RNG.exponential(40.0, (2000, 8)) + 5.0
    hard_p = np.asarray(cut(x, 30.0, width=5.0, hardness=HARD))
    errors = []
    for h in (1.0, 3.0, 10.0, 30.0):
        p = np.asarray(cut(x, 30.0, width=5.0, hardness=h))
        bound = np.abs(p - hard_p).sum(axis=1)
        for n in (2, 4):
            hard = np.asarray(at_least(hard_p, n, hardness=HARD))
            error = np.abs(np.asarray(at_least(p, n, hardness=h)) - hard)
            assert np.all(error <= bound + 1e-12)
            hard = np.asarray(exactly(hard_p, n, hardness=HARD))
            assert np.all(np.abs(np.asarray(exactly(p, n, hardness=h)) - hard) <= bound + 1e-12)
        errors.append(np.mean(error))
    assert all(a > 2 * b for a, b in itertools.pairwise(errors))


@pytest.mark.parametrize("method", ["poisson_binomial", "sigmoid"])
def test_count_derivatives_match_finite_differences(method):
    x = np.array([[22.0, 27.0, 31.0, 35.0, 60.0], [45.0, 29.0, 33.0, 12.0, 0.0]])

    def f(threshold, width):
        p = cut(x, threshold, width=width, hardness=1.0)
        return (
            at_least(p, 3, hardness=1.0, method=method),
            exactly(p, 2, hardness=1.0, method=method),
        )

    check_gradients(f, 30.0, 5.0)
    p = RNG.uniform(size=(3, 5))
    check_gradients(lambda p: at_least(p, 2, hardness=1.0, method=method), p)


def test_object_sum_equals_numpy_and_counts_handle_empty_events():
    values = RNG.normal(size=(4, 7))
    np.testing.assert_allclose(object_sum(values), values.sum(axis=1), rtol=1e-14)
    empty = np.zeros((3, 8))
    assert np.all(np.asarray(at_least(empty, 1, hardness=2.0)) == 0.0)
    assert np.all(np.asarray(exactly(empty, 0, hardness=2.0)) == 1.0)
    no_objects = np.zeros((3, 0))
    assert np.all(np.asarray(at_least(no_objects, 0, hardness=HARD)) == 1.0)
    grad = jax.grad(lambda p: at_least(p, 4, hardness=1.0).sum())(np.zeros((2, 8)))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_bad_counting_arguments_raise_config_errors():
    p = np.ones((2, 3))
    with pytest.raises(ConfigError, match="non-negative integer"):
        at_least(p, -1, hardness=1.0)
    with pytest.raises(ConfigError, match="counting method"):
        exactly(p, 1, hardness=1.0, method="poisson")
    with pytest.raises(ConfigError, match="max_count"):
        count_distribution(p, 0)


@pytest.mark.parametrize("hardness", [2.0, HARD])
def test_object_major_layout_gives_the_same_counts_and_gradients(hardness):
    from diffana.pipeline import scalar_sum

    pt = RNG.uniform(15.0, 80.0, size=(40, 7))
    pt[:5, 4:] = 0.0  # padding

    def counts(threshold, values, axis):
        p = cut(values, threshold, width=5.0, hardness=hardness, mask=values > 0)
        return (
            at_least(p, 4, hardness=hardness, axis=axis),
            exactly(p, 2, hardness=hardness, axis=axis),
            object_sum(p, axis),
            scalar_sum(values, p, axis=axis),
        )

    event_major = counts(30.0, pt, -1)
    object_major = counts(30.0, pt.T, 0)
    for a, b in zip(event_major, object_major, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        count_distribution(pt.T / 100.0, 3, axis=0), count_distribution(pt / 100.0, 3), rtol=1e-12
    )
    if hardness is not HARD:
        grad = [
            jax.grad(lambda t, v=v, ax=ax: sum(c.sum() for c in counts(t, v, ax)))(30.0)
            for v, ax in ((pt, -1), (pt.T, 0))
        ]
        np.testing.assert_allclose(grad[1], grad[0], rtol=1e-10)
