"""The AGC processor's hard pass equals an independent uproot + awkward + hist implementation of
the AGC selection (all systematics) on synthetic and real NanoAOD, and its names are the AGC's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diffana.pipeline.engine import Engine
from diffana.processors.agc_ttbar import AGCTtbarProcessor

AGC_CUTS = {"lepton_pt": 30.0, "jet_pt": 30.0, "btag": 0.5}
OTHER_CUTS = {"lepton_pt": 35.0, "jet_pt": 25.0, "btag": 0.625}
LOOSEST = {"lepton_pt": 20.0, "jet_pt": 20.0, "btag": 0.2}


def _assert_equal(got: dict, ref: dict) -> None:
    assert sorted(got) == sorted(ref)
    for name, h in ref.items():
        np.testing.assert_array_equal(got[name].axes[0].edges, h.axes[0].edges)
        for view in ("values", "variances"):
            np.testing.assert_allclose(
                getattr(got[name], view)(flow=True),
                getattr(h, view)(flow=True),
                rtol=1e-12,
                atol=1e-9,
                err_msg=f"{name} {view}",
            )


def test_names_are_the_agc_reference_names(agc_engine, shared):
    names = set(agc_engine.hard_histograms())
    reference = json.loads(
        (shared / "oracles/agc-reference/histos_1_file_per_process.json").read_text()
    )
    assert len(names) == 122
    # pseudo-data is built later from the histograms (diffana.stats.build.agc_pseudodata)
    assert names | {"4j1b_pseudodata", "4j2b_pseudodata"} == set(reference)


@pytest.mark.parametrize("params", [AGC_CUTS, OTHER_CUTS], ids=["agc", "other"])
def test_hard_pass_equals_independent_agc_on_synthetic_data(agc_engine, agc_fileset, agc, params):
    got = agc_engine.hard_histograms(params)
    ref = agc.histograms(agc_fileset, params)
    _assert_equal(got, ref)
    assert got["4j2b_ttbar"].values().sum() > 100  # the test data select many events
    assert got["4j1b_wjets_scale_var_up"].values().sum() > 0


def test_defaults_are_the_agc_cuts(agc_engine):
    assert AGCTtbarProcessor().default_params() == AGC_CUTS
    default, explicit = agc_engine.hard_histograms(), agc_engine.hard_histograms(AGC_CUTS)
    for name, h in default.items():
        np.testing.assert_array_equal(h.values(flow=True), explicit[name].values(flow=True))


def test_hard_pass_equals_independent_agc_on_real_cms_file(real_fileset, agc):
    with Engine(
        AGCTtbarProcessor(), real_fileset, chunk_size=agc.chunk, block_size=agc.block
    ) as engine:
        engine.skim()
        assert engine.report.events_read == 200
        for params in (AGC_CUTS, LOOSEST):
            _assert_equal(engine.hard_histograms(params), agc.histograms(real_fileset, params))
        assert sum(h.values(flow=True).sum() for h in engine.hard_histograms(LOOSEST).values()) > 0


@pytest.mark.filterwarnings(r"ignore:Missing cross-reference index:RuntimeWarning:coffea")
def test_coffea_adapter_gives_the_engine_hard_pass(agc_engine, agc_fileset):
    from coffea import processor
    from coffea.nanoevents import NanoAODSchema

    from diffana.processors.coffea_adapter import CoffeaProcessor

    subset = {k: agc_fileset[k] for k in ("ttbar__nominal", "wjets__nominal", "ttbar__PS_var")}
    runner = processor.Runner(
        processor.IterativeExecutor(), schema=NanoAODSchema, chunksize=agc_engine.chunk_size
    )
    out = runner(subset, treename="Events", processor_instance=CoffeaProcessor(AGCTtbarProcessor()))
    engine = agc_engine.hard_histograms()
    expected = {
        n
        for n in engine
        if n.split("_")[1] in ("ttbar", "wjets")
        and not n.endswith(("_ME_var", "_scaleup", "_scaledown"))
    }
    assert set(out) == expected
    # per region, ttbar: nominal, PS_var, 2 jet-pT and 8 b-tag variations; wjets: also scale_var
    assert len(expected) == 2 * (12 + 13)
    for name, h in out.items():
        np.testing.assert_allclose(h.values(flow=True), engine[name].values(flow=True), rtol=1e-12)
        np.testing.assert_allclose(
            h.variances(flow=True), engine[name].variances(flow=True), rtol=1e-12
        )
