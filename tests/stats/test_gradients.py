"""Derivatives of fitted quantities with respect to the yields, against central finite differences.

Each objective is differentiated along one random direction of *all* yields at once (reverse mode
for the objectives, forward mode for fitted parameters and limits) and compared with a central
finite difference of the objective itself (float64, relative 1e-5).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffana.stats import Model
from diffana.stats import fit as fitlib
from diffana.stats import objectives as obj
from diffana.stats.limits import upper_limit

SPEC = {
    "channels": [
        {
            "name": "SR",
            "samples": [
                {
                    "name": "signal",
                    "data": [4.0, 9.0, 6.0],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {"name": "lumi", "type": "lumi", "data": None},
                        {"name": "jes", "type": "normsys", "data": {"lo": 0.95, "hi": 1.07}},
                        {
                            "name": "jes",
                            "type": "histosys",
                            "data": {"lo_data": [3.5, 9.2, 6.4], "hi_data": [4.6, 8.7, 5.9]},
                        },
                        {"name": "stat_SR", "type": "staterror", "data": [0.5, 0.8, 0.6]},
                    ],
                },
                {
                    "name": "background",
                    "data": [40.0, 30.0, 12.0],
                    "modifiers": [
                        {"name": "lumi", "type": "lumi", "data": None},
                        {"name": "bkg_shape", "type": "shapesys", "data": [4.0, 3.0, 2.5]},
                        {"name": "stat_SR", "type": "staterror", "data": [1.0, 1.1, 0.9]},
                        {"name": "xsec", "type": "normsys", "data": {"lo": 0.9, "hi": 1.12}},
                    ],
                },
            ],
        },
        {
            "name": "CR",
            "samples": [
                {
                    "name": "background",
                    "data": [100.0, 80.0],
                    "modifiers": [
                        {"name": "lumi", "type": "lumi", "data": None},
                        {"name": "cr_free", "type": "shapefactor", "data": None},
                        {"name": "xsec", "type": "normsys", "data": {"lo": 0.9, "hi": 1.12}},
                    ],
                }
            ],
        },
    ],
    "parameters": [
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.5, 1.5]], "inits": [1.0]}
    ],
}
OBSERVED = jnp.array([45.0, 38.0, 19.0, 102.0, 79.0])


@pytest.fixture(scope="module")
def model():
    return Model(SPEC)


def _direction(yields, seed=0):
    keys = jax.random.split(jax.random.key(seed), len(yields))
    return type(yields)(
        *(leaf * jax.random.normal(k, leaf.shape) for leaf, k in zip(yields, keys, strict=True))
    )


def _central(fun, yields, v, step):
    """Central difference along ``v``, Richardson-extrapolated (truncation error O(step**4))."""

    def diff(h):
        plus = fun(jax.tree.map(lambda y, d: y + h * d, yields, v))
        minus = fun(jax.tree.map(lambda y, d: y - h * d, yields, v))
        return (plus - minus) / (2 * h)

    return (4 * diff(step / 2) - diff(step)) / 3


def _objectives(structure):
    """Every differentiable objective at once: one compiled program and one compiled gradient."""

    def values(y):
        data = obj.observed_data(structure, y, OBSERVED)
        cls = obj.cls(structure, y, data, 3.0).value
        return jnp.stack(
            [
                obj.poi_uncertainty(structure, y).value,  # Asimov: the AGC loop's default
                obj.poi_uncertainty(structure, y, data).value,
                obj.discovery_significance(structure, y).value,  # Z_A
                obj.q0(structure, y, data).value,
                obj.qmu(structure, y, data, 15.0).value,
                cls[0],  # observed CLs
                cls[1],  # expected, -2 sigma
                cls[3],  # expected, median
                cls[5],  # expected, +2 sigma
            ]
        )

    return jax.jit(values)


def test_objectives_match_central_finite_differences(model):
    values = _objectives(model.structure)
    v = _direction(model.yields)
    base = values(model.yields)
    assert np.all(np.asarray(base) > 0)
    jacobian = jax.jacrev(values)(model.yields)
    reverse = sum(jnp.tensordot(j, d, axes=d.ndim) for j, d in zip(jacobian, v, strict=True))
    np.testing.assert_allclose(reverse, _central(values, model.yields, v, 1e-4), rtol=1e-5)


def test_fitted_parameters_are_implicitly_differentiable(model):
    s = model.structure

    def bestfit(y):
        return fitlib.fit(s, y, obj.observed_data(s, y, OBSERVED)).bestfit

    v = _direction(model.yields, seed=1)
    _, tangent = jax.jvp(bestfit, (model.yields,), (v,))
    step = 1e-5
    np.testing.assert_allclose(
        tangent, _central(bestfit, model.yields, v, 1e-4), rtol=1e-5, atol=1e-8
    )
    # and with respect to the fixed POI value (the conditional fit's nuisance parameters)
    data = obj.observed_data(s, model.yields, OBSERVED)
    d_mu = jax.jacfwd(lambda m: fitlib.fixed_poi_fit(s, model.yields, data, m).bestfit)(1.5)
    fd = (
        fitlib.fixed_poi_fit(s, model.yields, data, 1.5 + step).bestfit
        - fitlib.fixed_poi_fit(s, model.yields, data, 1.5 - step).bestfit
    ) / (2 * step)
    np.testing.assert_allclose(d_mu, fd, rtol=1e-5, atol=1e-8)


def test_expected_upper_limit_is_differentiable(model):
    s = model.structure
    scan = jnp.linspace(0.0, 4.0, 9)

    def median_limit(y):
        asimov = obj.asimov_data(s, y, 0.0)
        return upper_limit(s, y, asimov, scan, rtol=1e-12).exp[2]

    v = _direction(model.yields, seed=2)
    value, tangent = jax.jvp(median_limit, (model.yields,), (v,))
    assert 0 < float(value) < 4
    central = _central(median_limit, model.yields, v, 1e-4)
    assert float(tangent) == pytest.approx(float(central), rel=1e-5)
