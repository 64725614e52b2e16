"""The objective: the AGC workspace as cabinetry builds it, statistics as pyhf computes them, and
the gradient of the full chain (engine soft histograms -> builder -> likelihood) against finite
differences."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pyhf
import pytest
import yaml

from diffana.config import ModelSpec
from diffana.errors import WorkspaceError
from diffana.pipeline.objective import Objective, model_histograms
from diffana.pipeline.placement import Placement
from diffana.stats.yields import yields_from_spec


@pytest.fixture(scope="module")
def agc(shared, agc_histograms):
    config = yaml.safe_load((shared / "oracles/agc-reference/cabinetry_config.yml").read_text())
    histograms = agc_histograms
    reference = json.loads(
        (shared / "oracles/agc-reference/workspace_5_files_per_process.json").read_text()
    )
    return Objective(config, histograms), histograms, reference


def test_workspace_equals_cabinetry_from_the_same_histograms(agc):
    """Pre-rebinned histograms and the AGC pseudo-data give cabinetry's workspace, yields to 1e-9."""
    objective, histograms, reference = agc
    ours = objective.workspace(histograms)
    assert [c["name"] for c in ours["channels"]] == [c["name"] for c in reference["channels"]]
    for c_ours, c_ref in zip(ours["channels"], reference["channels"], strict=True):
        for s_ours, s_ref in zip(c_ours["samples"], c_ref["samples"], strict=True):
            assert s_ours["name"] == s_ref["name"]
            np.testing.assert_allclose(s_ours["data"], s_ref["data"], rtol=1e-9)
            assert [(m["name"], m["type"]) for m in s_ours["modifiers"]] == [
                (m["name"], m["type"]) for m in s_ref["modifiers"]
            ]
            for m_ours, m_ref in zip(s_ours["modifiers"], s_ref["modifiers"], strict=True):
                if m_ref["data"] is None:
                    continue
                a, b = m_ours["data"], m_ref["data"]
                keys = sorted(a) if isinstance(a, dict) else [None]
                for key in keys:
                    np.testing.assert_allclose(
                        a if key is None else a[key], b if key is None else b[key], rtol=1e-9
                    )
    for o_ours, o_ref in zip(ours["observations"], reference["observations"], strict=True):
        np.testing.assert_allclose(o_ours["data"], o_ref["data"], rtol=1e-9)
    pyhf.Workspace(ours)  # schema-valid for pyhf


def test_placement_equals_yields_from_spec(agc):
    objective, histograms, _ = agc
    spec = objective.spec(histograms)
    model = {
        "channels": spec["channels"],
        "parameters": spec["measurements"][0]["config"]["parameters"],
    }
    ours = Placement(objective.structure, model)(model)
    theirs = yields_from_spec(objective.structure, model)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_sigma_poi_equals_pyhf_inverse_hessian_on_asimov(agc):
    """pyhf (JAX backend): sqrt([H^-1]_mu,mu), H the Hessian of -log L at the Asimov point of
    cabinetry's workspace; the objective builds its own from the histograms."""
    objective, histograms, reference = agc
    pyhf.set_backend("jax")
    try:
        model = pyhf.Workspace(reference).model()
        init = jnp.asarray(model.config.suggested_init())
        asimov = model.expected_data(init)
        hessian = jax.jit(jax.hessian(lambda p: -model.logpdf(p, asimov)[0]))(init)
        poi = model.config.poi_index
        expected = float(jnp.sqrt(jnp.linalg.inv(hessian)[poi, poi]))
    finally:
        pyhf.set_backend("numpy")
    assert objective.value(histograms, value_only=True) == pytest.approx(expected, rel=1e-9)


SMALL = {
    "measurement": "small",
    "poi": "mu",
    "pseudodata": "nominal",
    "regions": [{"name": "SR", "path": "sr", "binning": [0, 1, 2, 3]}],
    "samples": [
        {"name": "data", "path": "data", "data": True},
        {"name": "signal", "path": "sig"},
        {"name": "background", "path": "bkg"},
    ],
    "systematics": [
        {"name": "shape", "type": "NormPlusShape", "samples": ["background"],
         "up": {"variation": "_up"}, "down": {"symmetrize": True}},
        {"name": "lumi", "type": "Normalization",
         "up": {"normalization": 0.02}, "down": {"normalization": -0.02}},
    ],
    "norm_factors": [{"name": "mu", "samples": ["signal"], "nominal": 1.0, "bounds": [0, 10]}],
}  # fmt: skip


@pytest.fixture(scope="module")
def small():
    edges = [0.0, 1.0, 2.0, 3.0]
    h = {
        "sr_sig": {"values": [6.0, 9.0, 4.0], "variances": [0.6, 0.9, 0.4], "edges": edges},
        "sr_bkg": {"values": [40.0, 30.0, 20.0], "variances": [4.0, 3.0, 2.0], "edges": edges},
        "sr_bkg_up": {"values": [44.0, 30.0, 18.0], "variances": [4.4, 3.0, 1.8], "edges": edges},
    }
    return ModelSpec.model_validate(SMALL).to_cabinetry(), h


def _pyhf_model(workspace):
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    return pyhf.Workspace(workspace).model()


def test_discovery_significance_equals_pyhf_q0(small):
    config, h = small
    objective = Objective(config, h, kind="discovery_significance", pseudodata="nominal")
    model = _pyhf_model(objective.workspace(h))
    c = model.config
    init = c.suggested_init()
    q0 = pyhf.infer.test_statistics.q0(
        0.0, model.expected_data(init), model, init, c.suggested_bounds(), c.suggested_fixed()
    )
    assert objective.value(h, value_only=True) == pytest.approx(math.sqrt(float(q0)), rel=1e-6)
    assert objective.sign == -1.0  # maximised: the loss is -Z0


def test_cls_equals_pyhf_expected_cls(small):
    config, h = small
    objective = Objective(config, h, kind="cls", poi_test=0.5, pseudodata="nominal")
    model = _pyhf_model(objective.workspace(h))
    background = list(model.config.suggested_init())
    background[model.config.poi_index] = 0.0
    cls = pyhf.infer.hypotest(0.5, model.expected_data(background), model, test_stat="qtilde")
    assert objective.value(h, value_only=True) == pytest.approx(float(cls), rel=1e-6)


def test_bins_no_nominal_sample_fills_are_merged(small):
    """A bin that hard cuts emptied (0 in every nominal sample, filled in a variation) has no
    Poisson term: it is merged into its neighbour, and sigma_poi is then pyhf's on the workspace
    built with that bin merged by hand."""
    config, h = small
    emptied = {k: {**v, "values": [0.0, *v["values"][1:]], "variances": [0.0, *v["variances"][1:]]}
               for k, v in h.items() if k != "sr_bkg_up"}  # fmt: skip
    emptied["sr_bkg_up"] = {**h["sr_bkg_up"], "values": [2.0, 30.0, 18.0]}
    objective = Objective(config, h, pseudodata="nominal")  # structure from the full histograms
    _, notes = objective.merged(emptied)
    assert notes == [
        "SR: bin [0, 1) is empty in every nominal sample; merged into [1, 2) (now [0, 2))"
    ]
    by_hand = {**SMALL, "regions": [{"name": "SR", "path": "sr", "binning": [0, 2, 3]}]}
    expected_ws = Objective(
        ModelSpec.model_validate(by_hand).to_cabinetry(), emptied, pseudodata="nominal"
    ).workspace(emptied)
    workspace = objective.workspace(emptied)
    assert workspace == expected_ws
    assert [len(s["data"]) for s in workspace["channels"][0]["samples"]] == [2, 2]
    np.testing.assert_allclose(workspace["channels"][0]["samples"][1]["data"], [30.0, 20.0])

    model = _pyhf_model(workspace)
    init = np.asarray(model.config.suggested_init())
    asimov = model.expected_data(init)

    def nll(p):
        return -2.0 * float(model.logpdf(p, asimov)[0])

    # sigma = sqrt(2 [H^-1]_mu,mu), H by central finite differences of pyhf's -2 ln L
    n, step = len(init), 1e-4
    hessian = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            e_i, e_j = np.eye(n)[i] * step, np.eye(n)[j] * step
            f = [nll(init + a + b) for a, b in ((e_i, e_j), (e_i, -e_j), (-e_i, e_j), (-e_i, -e_j))]
            hessian[i, j] = (f[0] - f[1] - f[2] + f[3]) / (4 * step * step)
    poi = model.config.poi_index
    expected = math.sqrt(2.0 * np.linalg.inv(hessian)[poi, poi])
    assert math.isfinite(objective.value(emptied))
    assert objective.value(emptied, value_only=True) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("signal", "background", "binning", "note"),
    [
        ([0, 0, 4], [0, 0, 20], (0, 3), "bins [0, 2) are empty in every nominal sample; merged into [2, 3) (now [0, 3))"),
        ([6, 0, 0], [40, 0, 0], (0, 3), "bins [1, 3) are empty in every nominal sample; merged into [0, 1) (now [0, 3))"),
        ([6, 0, 4], [40, 0, 20], (0, 1, 3), "bin [1, 2) is empty in every nominal sample; merged into [2, 3) (now [1, 3))"),
    ],
)  # fmt: skip
def test_runs_of_empty_bins_merge_into_one_neighbour(small, signal, background, binning, note):
    config, h = small
    edges = h["sr_sig"]["edges"]
    emptied = {
        "sr_sig": {"values": signal, "variances": signal, "edges": edges},
        "sr_bkg": {"values": background, "variances": background, "edges": edges},
        "sr_bkg_up": {"values": background, "variances": background, "edges": edges},
    }
    merged, notes = Objective(config, h, pseudodata="nominal").merged(emptied)
    assert notes == [f"SR: {note}"]
    assert merged.config.regions[0].binning == binning
    assert math.isfinite(merged.value(emptied, value_only=True))


def test_a_sample_without_events_in_a_region_is_left_out(small):
    """The background has no events at these cuts: the model is the one without it (and without
    its shape systematic), with the empty first bin merged, as a config written by hand gives."""
    config, h = small
    zero = [0.0, 0.0, 0.0]
    emptied = {**h, "sr_sig": {**h["sr_sig"], "values": [0.0, 9.0, 4.0]}}
    emptied["sr_bkg"] = {**h["sr_bkg"], "values": zero, "variances": zero}
    emptied["sr_bkg_up"] = {**h["sr_bkg_up"], "values": zero, "variances": zero}
    objective = Objective(config, h, pseudodata="nominal")
    _, notes = objective.merged(emptied)
    assert notes == [
        "SR: sample background has no events; left out of the region",
        "SR: bin [0, 1) is empty in every nominal sample; merged into [1, 2) (now [0, 2))",
    ]
    by_hand = {
        **SMALL,
        "regions": [{"name": "SR", "path": "sr", "binning": [0, 2, 3]}],
        "samples": SMALL["samples"][:2],
        "systematics": SMALL["systematics"][1:],
    }
    signal_only = Objective(
        ModelSpec.model_validate(by_hand).to_cabinetry(), emptied, pseudodata="nominal"
    )
    assert objective.workspace(emptied) == signal_only.workspace(emptied)
    assert objective.value(emptied, value_only=True) == pytest.approx(
        signal_only.value(emptied, value_only=True), rel=1e-12
    )


def test_a_model_invalid_after_merging_gives_nan_not_an_error(small):
    """An up variation 2.5x the nominal symmetrises to a negative normsys factor: no valid model
    with or without the merged bin, so the value is NaN, as for any point without one."""
    config, h = small
    emptied = {k: {**v, "values": [0.0, *v["values"][1:]], "variances": [0.0, *v["variances"][1:]]}
               for k, v in h.items()}  # fmt: skip
    emptied["sr_bkg_up"]["values"] = [0.0, 75.0, 50.0]
    objective = Objective(config, h, pseudodata="nominal")
    assert math.isnan(objective.value(emptied, value_only=True))


def test_missing_histograms_are_named(small):
    config, h = small
    with pytest.raises(
        WorkspaceError, match=r"needs histograms that are not there: \['sr_bkg_up'\]"
    ):
        Objective(config, {k: v for k, v in h.items() if k != "sr_bkg_up"}, pseudodata="nominal")
    with pytest.raises(WorkspaceError, match=r"\['sr_data'\] are missing and pseudodata is 'none'"):
        Objective(config, h, pseudodata="none")


def test_model_histograms_lists_what_the_builder_reads(agc):
    objective, histograms, _ = agc
    entries = {e.name: e for e in model_histograms(objective.config)}
    assert set(entries) == set(histograms) | {"4j1b_pseudodata", "4j2b_pseudodata"}
    assert entries["4j2b_ttbar_ME_var"].variation == "_ME_var"
    assert entries["4j2b_ttbar_ME_var"].region.name == "4j2b SR"
    assert entries["4j1b_wjets"].variation == ""
    assert entries["4j1b_pseudodata"].sample.data


TOY_MODEL = {
    "measurement": "toy",
    "poi": "mu",
    "histograms": "{region}__{sample}{variation}",
    "nominal": "__nominal",
    "pseudodata": "nominal",
    "regions": [{"name": "HT", "path": "ht", "binning": [0, 50, 100, 150, 200, 250, 300, 400, 600]}],
    "samples": [
        {"name": "data", "path": "data", "data": True},
        {"name": "ttbar", "path": "ttbar"},
        {"name": "wjets", "path": "wjets"},
    ],
    "systematics": [
        {"name": "scale", "type": "NormPlusShape", "samples": ["ttbar"],
         "up": {"variation": "__scaleup"}, "down": {"symmetrize": True}},
        {"name": "jes", "type": "NormPlusShape",
         "up": {"variation": "__jes_up"}, "down": {"symmetrize": True}},
        {"name": "lumi", "type": "Normalization",
         "up": {"normalization": 0.03}, "down": {"normalization": -0.03}},
    ],
    "norm_factors": [{"name": "mu", "samples": ["ttbar"], "nominal": 1.0, "bounds": [0, 10]}],
}  # fmt: skip


@pytest.fixture(scope="module")
def toy_chain(toy, tmp_path_factory):
    from diffana.pipeline.engine import Engine

    fileset = toy.make_fileset(tmp_path_factory.mktemp("objective_data"), 1, 3000)
    engine = Engine(toy.Processor(), fileset, chunk_size=1000)
    engine.skim()
    objective = Objective(
        ModelSpec.model_validate(TOY_MODEL).to_cabinetry(),
        engine.evaluate(None, hardness=math.inf),
        pseudodata="nominal",
    )
    yield engine, objective
    engine.close()


def test_full_chain_gradient_matches_central_finite_differences(toy_chain):
    """d sigma(mu) / d cuts through soft histograms, builder and likelihood vs central FD."""
    engine, objective = toy_chain
    params = {"jet_pt": 32.0, "btag": 0.45}
    value, grad = engine.value_and_grad(objective, hardness=1.0)(params)
    assert value == pytest.approx(
        float(objective(engine.evaluate(params, hardness=1.0))), rel=1e-12
    )
    for name, step in (("jet_pt", 0.02), ("btag", 0.0005)):
        up = float(objective(engine.evaluate({**params, name: params[name] + step}, hardness=1.0)))
        down = float(
            objective(engine.evaluate({**params, name: params[name] - step}, hardness=1.0))
        )
        assert grad[name] == pytest.approx((up - down) / (2 * step), rel=1e-5), name
