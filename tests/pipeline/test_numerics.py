from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffana.pipeline import (
    HARD,
    Regular,
    Variable,
    at_least,
    best_trijet_mass,
    cut,
    exactly,
    kde_histogram,
    logical_or,
    scalar_sum,
    sigmoid_histogram,
    trijet_candidates,
    window,
)

AGC = Regular(25, 50.0, 550.0)


def _events(dtype, empty=False):
    """Jets with huge, tiny, threshold-exact, padded and all-masked entries; one lepton each."""
    pt = np.array(
        [
            [1e30, 1e29, 1e-30, 0.0],  # huge and tiny
            [30.0, 30.0, 30.0, 30.0],  # exactly at the threshold
            [55.0, 41.0, 0.0, 0.0],  # two padding slots
            [0.0, 0.0, 0.0, 0.0],  # all masked
            [420.0, 380.0, 250.0, 90.0],  # beyond the last bin
        ]
    )
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    btag = np.array(
        [[1.0, 0.0, 0.7, 0.0], [0.5, 0.5, 0.9, 0.1], [0.8, 0.2, 0, 0], [0] * 4, [0.6] * 4]
    )
    eta = np.array(
        [[0.0, 3.0, -1e-30, 0.0], [2.4, -2.4, 1.0, 0.1], [0.3, 0.2, 0, 0], [0] * 4, [1.0] * 4]
    )
    lepton = np.array([1e30, 30.0, 1e-30, 0.0, 45.0])
    if empty:
        pt, mask, btag, eta, lepton = (a[:0] for a in (pt, mask, btag, eta, lepton))

    def cast(a):
        return a.astype(dtype)

    return {
        "pt": cast(pt), "eta": cast(eta), "btag": cast(btag), "lepton": cast(lepton),
        "mask": mask, "phi": cast(np.linspace(-3.0, 3.0, 4) * np.ones_like(pt)),
        "mass": cast(np.full_like(pt, 5.0)),
    }  # fmt: skip


def _pipeline(theta, ev, hardness, reach=3):
    """Every soft op on the events; the sum of all histogram contents and event observables."""
    lep_cut, jet_cut, btag_cut, eta_cut, width, bandwidth = (theta[i] for i in range(6))
    lepton = cut(ev["lepton"], lep_cut, width=width, hardness=hardness, op=">=")
    jets = cut(ev["pt"], jet_cut, width=width, hardness=hardness, mask=ev["mask"])
    jets = jets * window(ev["eta"], -eta_cut, eta_cut, width=0.1, hardness=hardness)
    tagged = cut(ev["btag"], btag_cut, width=0.05, hardness=hardness)
    weights = jnp.stack(
        [
            lepton
            * at_least(jets, 4, hardness=hardness)
            * exactly(jets * tagged, 1, hardness=hardness),
            lepton * at_least(jets * tagged, 2, hardness=hardness, method="sigmoid"),
            logical_or(lepton, exactly(jets, 0, hardness=hardness)),
        ],
        axis=1,
    )
    ht = scalar_sum(ev["pt"], jets)
    trijets = trijet_candidates(ev["pt"], ev["eta"], ev["phi"], ev["mass"])
    mbjj = best_trijet_mass(trijets, jets, tagged, hardness=hardness)
    total = jnp.sum(ht) * 1e-30 + jnp.sum(mbjj) * 1e-30
    # The bandwidth is traced: with ``reach=None`` the fills evaluate every edge (the dense fill).
    kde = kde_histogram(
        ht, AGC, bandwidth=bandwidth, hardness=hardness, weights=weights, reach=reach
    )
    edges = sigmoid_histogram(
        mbjj, Variable(AGC.edges), width=bandwidth, hardness=hardness, weights=weights, reach=reach
    )
    return total + sum(jnp.sum(a) for a in (kde.sumw, kde.sumw2, edges.sumw, edges.sumw2))


@functools.partial(jax.jit, static_argnames="reach")
def _value_and_derivatives(theta, ev, hardness, reach):
    value, grad = jax.value_and_grad(_pipeline)(theta, ev, hardness, reach)
    _, tangent = jax.jvp(
        lambda t: _pipeline(t, ev, hardness, reach), (theta,), (jnp.ones_like(theta),)
    )
    return value, grad, tangent


@pytest.mark.parametrize("reach", [3, None], ids=["window", "dense"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_gradients_are_finite_for_extreme_inputs(dtype, reach):
    ev = _events(dtype)
    theta = jnp.asarray([30.0, 30.0, 0.5, 2.4, 5.0, 20.0], dtype)
    for hardness in (1e-2, 1.0, 1e2, 1e4):
        value, grad, tangent = _value_and_derivatives(
            theta, ev, jnp.asarray(hardness, dtype), reach
        )
        assert np.isfinite(value)
        assert np.all(np.isfinite(np.asarray(grad))), (hardness, np.asarray(grad))
        assert np.isfinite(tangent), hardness
    assert np.isfinite(jax.jit(lambda t, e: _pipeline(t, e, HARD))(theta, ev))


def _small_pipeline(theta, ev, hardness, reach=3):
    jets = cut(ev["pt"], theta[0], width=theta[1], hardness=hardness, mask=ev["mask"])
    weight = at_least(jets, 2, hardness=hardness) * exactly(jets, 3, hardness=hardness)
    ht = scalar_sum(ev["pt"], jets)
    kde = kde_histogram(ht, AGC, bandwidth=theta[2], hardness=hardness, weights=weight, reach=reach)
    edges = sigmoid_histogram(
        ht, Variable(AGC.edges), width=theta[2], hardness=hardness, reach=reach
    )
    return kde.sumw, kde.sumw2, edges.sumw, edges.sumw2


@pytest.mark.parametrize("reach", [3, None], ids=["window", "dense"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_blocks_fill_zeros_with_zero_derivatives(dtype, reach):
    ev = _events(dtype, empty=True)
    theta = jnp.asarray([30.0, 5.0, 20.0], dtype)
    pipeline = functools.partial(_small_pipeline, reach=reach)
    for hardness in (HARD, 1.0, 1e4):
        sums = pipeline(theta, ev, hardness)
        assert all(np.array_equal(s, np.zeros(27)) for s in sums)
    jac = jax.jit(jax.jacfwd(pipeline))(theta, ev, jnp.asarray(1e4, dtype))
    assert all(np.array_equal(j, np.zeros((27, 3))) for j in jac)
    jac = jax.jit(jax.jacrev(pipeline))(theta, ev, jnp.asarray(1e4, dtype))
    assert all(np.array_equal(j, np.zeros((27, 3))) for j in jac)
