"""A small model's fits compile to one function each loop (diffana._xla), with the same results."""

from __future__ import annotations

import os

import jax.numpy as jnp
import pyhf
import pytest

from diffana import _xla
from diffana.stats import Workspace
from diffana.stats.asymptotics import hypotest

CASE = "2bin_2channel_mu1"  # 5 parameters: a normfactor and two 2-bin shapesys


@pytest.fixture
def case(reference_cases):
    return next(c for c in reference_cases["validation_cases"] if c["name"] == CASE)


def test_importing_diffana_sets_the_small_loop_size():
    assert _xla.FLAG in os.environ.get("XLA_FLAGS", "")


def test_every_loop_of_a_small_hypotest_is_one_function(case):
    """No scatter or library call in the loops: XLA merges each (the scan, the Newton loop, the
    line search and the factorisation retries) into one function instead of separate kernels."""
    ws = Workspace(case["workspace"])
    model = ws.model(modifier_settings=case["model_settings"]["modifier_settings"])
    data = jnp.asarray(ws.data(model))
    text = hypotest.lower(model.structure, model.yields, data, 1.0).compile().as_text()
    loops = text.count(" while(")
    assert loops == 4
    assert text.count('xla_cpu_small_call="true"') == loops


def test_the_merged_loops_give_pyhfs_cls(case):
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    try:
        pws = pyhf.Workspace(case["workspace"])
        pmodel = pws.model(modifier_settings=case["model_settings"]["modifier_settings"])
        data = pws.data(pmodel)
        cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, pmodel, return_expected_set=True)
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    ws = Workspace(case["workspace"])
    model = ws.model(modifier_settings=case["model_settings"]["modifier_settings"])
    result = hypotest(model.structure, model.yields, jnp.asarray(ws.data(model)), 1.0)
    assert int(result.status) == 0
    assert float(result.cls_obs) == pytest.approx(float(cls_obs), rel=1e-6)
    expected = [float(v) for v in cls_exp]
    assert [float(v) for v in result.cls_exp] == pytest.approx(expected, rel=1e-6)
