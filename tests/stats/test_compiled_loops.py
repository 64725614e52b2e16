"""A small model's fits compile to one function each loop (diffana._xla), with the same results."""

from __future__ import annotations

import os

import jax.numpy as jnp
import pyhf
import pytest

from diffana import _xla
from diffana.stats import Model
from diffana.stats.asymptotics import hypotest

SPEC = {
    "channels": [
        {
            "name": "sr",
            "samples": [
                {
                    "name": "s",
                    "data": [3.0, 4.0, 5.0],
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
                {
                    "name": "b",
                    "data": [30.0, 40.0, 35.0],
                    "modifiers": [
                        {"name": "unc_b", "type": "shapesys", "data": [3.0, 4.0, 3.5]},
                        {"name": "norm", "type": "normsys", "data": {"lo": 0.93, "hi": 1.08}},
                    ],
                },
            ],
        }
    ]
}


def test_importing_diffana_sets_the_small_loop_size():
    assert f"xla_cpu_small_while_loop_byte_threshold={_xla.SMALL_LOOP_BYTES}" in os.environ.get(
        "XLA_FLAGS", ""
    )


def test_every_loop_of_a_small_hypotest_is_one_function():
    """No scatter or library call in the loops: XLA merges each (the scan, the Newton loop, the
    line search and the factorisation retries) into one function instead of separate kernels."""
    model = Model(SPEC)
    data = jnp.asarray([33.0, 45.0, 38.0, *model.config.auxdata])
    text = hypotest.lower(model.structure, model.yields, data, 1.0).compile().as_text()
    loops = text.count(" while(")
    assert loops == 4
    assert text.count('xla_cpu_small_call="true"') == loops


def test_the_merged_loops_give_pyhfs_cls():
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    try:
        pmodel = pyhf.Model(SPEC, poi_name="mu")
        data = [33.0, 45.0, 38.0, *pmodel.config.auxdata]
        cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, pmodel, return_expected_set=True)
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    model = Model(SPEC)
    result = hypotest(model.structure, model.yields, jnp.asarray(data), 1.0)
    assert int(result.status) == 0
    assert float(result.cls_obs) == pytest.approx(float(cls_obs), rel=1e-6)
    assert [float(v) for v in result.cls_exp] == pytest.approx(
        [float(v) for v in cls_exp], rel=1e-6
    )
