from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import expit

from diffana.errors import ConfigError
from diffana.pipeline import HARD, cut, logical_and, logical_not, logical_or, window
from diffana.pipeline.gradcheck import check_gradients

OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
RNG = np.random.default_rng(7)


def _values(dtype):
    x = np.concatenate([RNG.exponential(40.0, 200), [30.0, 0.1, -0.0, np.inf, -np.inf, np.nan]])
    return x.astype(dtype)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hard_cut_equals_numpy_boolean(op, dtype):
    x = _values(dtype)
    for threshold in (30.0, 0.1):  # 0.1 is not a float32: numpy compares in float32 (NEP 50)
        expected = OPS[op](x, threshold)
        got = np.asarray(cut(x, threshold, width=5.0, hardness=HARD, op=op))
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected.astype(dtype))


@pytest.mark.parametrize("op", list(OPS))
def test_soft_cut_is_the_logistic_of_the_scaled_distance(op):
    x = _values(np.float64)
    sign = 1.0 if op in (">", ">=") else -1.0
    got = np.asarray(cut(x, 30.0, width=5.0, hardness=3.0, op=op))
    with np.errstate(invalid="ignore"):
        expected = np.where(np.isnan(x), 0.0, expit(sign * (x - 30.0) * 3.0 / 5.0))
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300)


def test_soft_cut_converges_to_the_hard_cut_exponentially():
    # Points at distance >= d from the threshold: error <= sigmoid(-d h / w) = 1 / (1 + e^{d h / w}).
    x = np.concatenate([30.0 - np.linspace(1.0, 50.0, 50), 30.0 + np.linspace(1.0, 50.0, 50)])
    hard = np.asarray(cut(x, 30.0, width=5.0, hardness=HARD))
    for h in (1.0, 3.0, 10.0, 30.0):
        error = np.max(np.abs(np.asarray(cut(x, 30.0, width=5.0, hardness=h)) - hard))
        np.testing.assert_allclose(error, expit(-1.0 * h / 5.0), rtol=1e-12)


@pytest.mark.parametrize("op", [">", "<="])
def test_cut_derivatives_match_finite_differences(op):
    x = np.array([12.0, 29.0, 30.5, 33.0, 51.0])

    def f(x, threshold, width, hardness):
        return cut(x, threshold, width=width, hardness=hardness, op=op)

    check_gradients(f, x, 30.0, 5.0, 2.0)


def test_window_derivatives_match_finite_differences():
    x = np.array([0.5, 1.1, 2.0, 2.9, 3.5])
    check_gradients(lambda x, lo, hi: window(x, lo, hi, width=0.3, hardness=1.5), x, 1.0, 3.0)


@pytest.mark.parametrize(
    ("closed", "low_op", "high_op"),
    [("left", ">=", "<"), ("right", ">", "<="), ("both", ">=", "<="), ("neither", ">", "<")],
)
def test_hard_window_equals_numpy(closed, low_op, high_op):
    x = np.array([0.5, 1.0, 1.5, 3.0, 3.5, np.nan])
    expected = OPS[low_op](x, 1.0) & OPS[high_op](x, 3.0)
    got = window(x, 1.0, 3.0, width=0.1, hardness=HARD, closed=closed)
    np.testing.assert_array_equal(np.asarray(got), expected.astype(float))


def test_soft_window_is_the_product_of_two_sigmoids():
    x = np.linspace(-1.0, 5.0, 13)
    got = np.asarray(window(x, 1.0, 3.0, width=0.5, hardness=2.0))
    np.testing.assert_allclose(got, expit((x - 1.0) * 4.0) * expit((3.0 - x) * 4.0), rtol=1e-14)


def test_logic_is_exact_on_hard_weights_and_probabilistic_on_soft():
    a = np.array([0.0, 0.0, 1.0, 1.0])
    b = np.array([0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(logical_and(a, b), np.logical_and(a, b))
    np.testing.assert_array_equal(logical_or(a, b), np.logical_or(a, b))
    np.testing.assert_array_equal(logical_not(a), np.logical_not(a))
    p, q, r = 0.2, 0.7, 0.4
    # inclusion-exclusion for independent events
    np.testing.assert_allclose(logical_or(p, q, r), p + q + r - p * q - p * r - q * r + p * q * r)
    np.testing.assert_allclose(logical_and(p, q, r), p * q * r)
    check_gradients(lambda u, v: logical_or(u, logical_not(v)), np.array([0.2, 0.9]), 0.3)


def test_mask_zeroes_padding_even_when_it_holds_nan():
    x = np.array([[40.0, np.nan], [20.0, 35.0]])
    mask = np.array([[True, False], [True, True]])
    for hardness in (HARD, 1.0):
        got = np.asarray(cut(x, 30.0, width=5.0, hardness=hardness, mask=mask))
        assert got[0, 1] == 0.0
        assert np.all(np.isfinite(got))


_grad_all = jax.jit(
    jax.grad(lambda x, t, w, h: jnp.sum(cut(x, t, width=w, hardness=h) ** 2), argnums=(0, 1, 2, 3))
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hardness", [1e-3, 1.0, 1e4])
def test_values_and_gradients_stay_finite_at_extremes(dtype, hardness):
    big = np.finfo(dtype).max
    x = np.array([0.0, 30.0, 1e-30, -1e-30, 1e30, -1e30, big, -big, np.inf, -np.inf], dtype)
    t, w, h = dtype(30.0), dtype(5.0), dtype(hardness)
    values = np.asarray(cut(x, t, width=w, hardness=h))
    assert np.all(np.isfinite(values))
    assert np.all((values >= 0) & (values <= 1))
    for g in _grad_all(x, t, w, h):
        assert np.all(np.isfinite(np.asarray(g)))
    # forward mode through the width (the term that multiplies x - t)
    _, tangent = jax.jvp(lambda w: cut(x, t, width=w, hardness=h), (w,), (dtype(1.0),))
    assert np.all(np.isfinite(np.asarray(tangent)))


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match="cut op"):
        cut(np.ones(2), 1.0, width=1.0, hardness=1.0, op="=>")
    with pytest.raises(ConfigError, match="hardness must be a positive"):
        cut(np.ones(2), 1.0, width=1.0, hardness=0.0)
    with pytest.raises(ConfigError, match="window closed"):
        window(np.ones(2), 0.0, 1.0, width=1.0, hardness=1.0, closed="open")
