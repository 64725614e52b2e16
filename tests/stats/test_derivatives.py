"""The fits' analytic gradient and Hessian against JAX's autodiff of the deviance.

Models of more than eight parameters whose parameters share few bins (per-bin modifiers) take the
Hessian's Gauss-Newton product over the pairs of parameters sharing a bin only; the others the
dense product. Both are checked here, and the static pattern of the rates' Jacobian that the sparse
form relies on against the Jacobian itself.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pyhf
import pytest

from diffana.stats import Model, Workspace
from diffana.stats.derivatives import _jacobian_pattern, deviance_derivatives
from diffana.stats.likelihood import deviance, expected_actualdata


def _shapesys50():
    rng = np.random.default_rng(0)
    signal, bkg = rng.uniform(1, 10, 50), rng.uniform(50, 100, 50)
    spec = pyhf.simplemodels.uncorrelated_background(
        signal.tolist(), bkg.tolist(), (0.1 * bkg).tolist()
    ).spec
    return Model(spec)


def _per_bin_two_channels():
    """Staterror, shapesys and shapefactor sharing bins, a normsys and a lumi: 25 parameters."""
    sr = [20.0, 30.0, 25.0, 18.0, 12.0, 9.0]
    cr = [100.0, 120.0, 90.0, 80.0, 60.0]
    spec = {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {
                        "name": "signal",
                        "data": [0.2 * x for x in sr],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            {"name": "lumi", "type": "lumi", "data": None},
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": sr,
                        "modifiers": [
                            {
                                "name": "stat_SR",
                                "type": "staterror",
                                "data": [0.05 * x for x in sr],
                            },
                            {"name": "unc_SR", "type": "shapesys", "data": [0.1 * x for x in sr]},
                            {"name": "norm", "type": "normsys", "data": {"lo": 0.9, "hi": 1.12}},
                        ],
                    },
                ],
            },
            {
                "name": "CR",
                "samples": [
                    {
                        "name": "bkg",
                        "data": cr,
                        "modifiers": [
                            {
                                "name": "stat_CR",
                                "type": "staterror",
                                "data": [0.05 * x for x in cr],
                            },
                            {"name": "shape_CR", "type": "shapefactor", "data": None},
                            {"name": "norm", "type": "normsys", "data": {"lo": 0.9, "hi": 1.12}},
                        ],
                    }
                ],
            },
        ],
        "parameters": [
            {
                "name": "lumi",
                "auxdata": [1.0],
                "sigmas": [0.02],
                "bounds": [[0.5, 1.5]],
                "inits": [1.0],
            }
        ],
    }
    return Model(spec)


def _agc(shared):
    path = shared / "oracles/agc-reference/workspace_5_files_per_process.json"
    workspace = Workspace(json.loads(path.read_text()))
    return workspace.model()


@pytest.fixture(params=["shapesys50", "per_bin_two_channels", "agc"])
def model(request, shared):
    if request.param == "agc":
        return _agc(shared)
    return {"shapesys50": _shapesys50, "per_bin_two_channels": _per_bin_two_channels}[
        request.param
    ]()


def _point_and_data(model, seed=1):
    rng = np.random.default_rng(seed)
    bounds = np.asarray(model.config.suggested_bounds())
    init = np.asarray(model.config.suggested_init())
    pars = np.clip(init + rng.normal(0, 0.1, init.size), bounds[:, 0], bounds[:, 1])
    expected = np.asarray(model.expected_data(init))
    data = expected * rng.uniform(0.8, 1.2, expected.size)
    return jnp.asarray(pars), jnp.asarray(data)


def test_gradient_and_hessian_equal_autodiff(model):
    assert model.config.npars > 8  # the larger models' code paths
    pars, data = _point_and_data(model)
    value, grad, hess = deviance_derivatives(model.structure, model.yields, pars, data, order=2)
    fun = lambda x: deviance(model.structure, model.yields, x, data)  # noqa: E731
    np.testing.assert_allclose(value, fun(pars), rtol=1e-13)
    np.testing.assert_allclose(grad, jax.grad(fun)(pars), rtol=1e-10, atol=1e-10)
    expected = jax.hessian(fun)(pars)
    scale = float(jnp.max(jnp.abs(expected)))
    np.testing.assert_allclose(hess, expected, rtol=1e-10, atol=1e-12 * scale)


def test_jacobian_pattern_covers_the_rates_jacobian(model):
    pars, _ = _point_and_data(model, seed=2)
    jacobian = jax.jacfwd(lambda x: expected_actualdata(model.structure, model.yields, x))(pars)
    pattern = _jacobian_pattern(
        model.structure.tables, model.structure.npars, model.structure.nbins
    )
    nonzero = np.asarray(jacobian != 0).T  # [parameter, bin]
    assert not np.any(nonzero & ~pattern)
    # and it is not all ones: the per-bin parameters touch one bin each
    assert pattern.sum() < pattern.size
