"""A diffana processor through coffea's own runner gives the engine's hard histograms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from coffea import processor
from coffea.nanoevents import NanoAODSchema

from diffana.processors.coffea_adapter import CoffeaProcessor

pytestmark = [
    pytest.mark.filterwarnings(r"ignore:Missing cross-reference index:RuntimeWarning:coffea"),
]


@pytest.mark.parametrize("params", [None, {"jet_pt": 41.0, "btag": 0.3}])
def test_coffea_runner_matches_engine_and_reference(toy, toy_fileset, toy_engines, params):
    runner = processor.Runner(processor.IterativeExecutor(), schema=NanoAODSchema, chunksize=500)
    out = runner(
        toy_fileset, treename="Events", processor_instance=CoffeaProcessor(toy.Processor(), params)
    )
    engine = toy_engines["inprocess"].hard_histograms(params)
    ref = toy.reference_hard(toy_fileset, params or toy.Processor().default_params())
    assert sorted(out) == sorted(engine) == sorted(ref)
    for name in ref:
        np.testing.assert_array_equal(out[name].values(flow=True), engine[name].values(flow=True))
        np.testing.assert_array_equal(
            out[name].variances(flow=True), engine[name].variances(flow=True)
        )
        np.testing.assert_allclose(
            out[name].values(flow=True), ref[name].values(flow=True), rtol=1e-12, atol=0
        )


def test_soft_pass_through_coffea(toy, toy_fileset, toy_engines):
    runner = processor.Runner(processor.IterativeExecutor(), schema=NanoAODSchema, chunksize=500)
    out = runner(
        toy_fileset,
        treename="Events",
        processor_instance=CoffeaProcessor(toy.Processor(), hardness=2.0),
    )
    soft = toy_engines["inprocess"].evaluate(None, hardness=2.0)
    for name, h in soft.items():
        np.testing.assert_allclose(out[name].values(flow=True), np.asarray(h.sumw), rtol=1e-12)
    assert not math.isinf(CoffeaProcessor(toy.Processor(), hardness=2.0).hardness)
