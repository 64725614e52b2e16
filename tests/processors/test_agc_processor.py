"""The AGC processor's pieces: clipped jets are counted and reported, the deterministic JER
smearing follows its documented definition, names follow the AGC, options and metadata are checked."""

from __future__ import annotations

import re

import awkward as ak
import numpy as np
import pytest
import uproot

from diffana.errors import ConfigError
from diffana.pipeline import HARD, best_trijet_mass, trijet_candidates
from diffana.pipeline.engine import Engine
from diffana.processors import get_processor
from diffana.processors.agc_kernel import _tabulated_mass
from diffana.processors.agc_skim import jet_pt_resolution, trijet_columns
from diffana.processors.agc_ttbar import AGCTtbarProcessor, ClippedObjectsWarning
from diffana.processors.base import Chunk, ColumnBlock
from diffana.processors.registry import processor_class


def _loose_jets_of_preselected(file: str, n_max: int) -> int:
    """Events of a file that pass the skim's preselection with more than ``n_max`` loose jets."""
    a = uproot.open(file)["Events"].arrays()
    ele = (a.Electron_pt > 20) & (abs(a.Electron_eta) < 2.1) & (a.Electron_cutBased == 4)
    ele = ele & (a.Electron_sip3d < 4)
    mu = (a.Muon_pt > 20) & (abs(a.Muon_eta) < 2.1) & a.Muon_tightId & (a.Muon_sip3d < 4)
    mu = mu & (a.Muon_pfRelIso04_all < 0.15)
    lep = ak.sort(ak.concatenate([a.Electron_pt[ele], a.Muon_pt[mu]], axis=1), ascending=False)
    second = ak.fill_none(ak.pad_none(lep, 2)[:, 1], 0)
    jet = (a.Jet_pt > 20) & (abs(a.Jet_eta) < 2.4) & ((a.Jet_jetId & 4) != 0)
    tagged = ak.any(jet & (a.Jet_btagCSVV2 >= 0.2), axis=1)
    n_jet = ak.sum(jet, axis=1)
    keep = (ak.num(lep) >= 1) & (second <= 60) & (n_jet >= 4) & tagged
    return int(ak.sum(keep & (n_jet > n_max)))


def test_clipped_events_are_counted_and_reported(agc_fileset, agc):
    fileset = {"ttbar__ME_var": agc_fileset["ttbar__ME_var"]}
    (file,) = fileset["ttbar__ME_var"]["files"]
    expected = _loose_jets_of_preselected(file, 9)
    assert expected > 0  # the test data have events with ten or more jets
    engine = Engine(
        AGCTtbarProcessor(max_jets=9), fileset, chunk_size=agc.chunk, block_size=agc.block
    )
    with pytest.warns(ClippedObjectsWarning) as record:
        engine.skim()
    engine.close()
    messages = [str(w.message) for w in record if w.category is ClippedObjectsWarning]
    counted = sum(int(re.match(r"(\d+) of \d+ events", m).group(1)) for m in messages)
    assert counted == expected
    assert all("Raise max_jets" in m for m in messages)


def test_padding_rows_are_not_counted_as_clipped():
    processor = AGCTtbarProcessor(max_jets=4)
    columns = {
        "lep_pt": np.full((3, 2), 40.0, np.float32),
        "weight": np.array([1.0, 1.0, 0.0]),  # the last row pads the block
        "jets_clipped": np.array([2, 0, 2]),
        **{f"jet_{k}": np.ones((3, 4), np.float32) for k in ("pt", "btag", "eta", "phi", "mass")},
    }
    with pytest.warns(ClippedObjectsWarning, match="^1 of 2 events of block 'nominal'"):
        block = processor.prepare(ColumnBlock(columns), "nominal")
    assert block["trijet_table"].shape == (3, 1, 3)  # n = 4 selected jets, k = 2 .. 4 tags
    assert "jets_clipped" not in block.columns


@pytest.mark.parametrize("width", [6, 12])
def test_trijet_table_is_the_hard_trijet_choice(width):
    """The tabulated choice equals best_trijet_mass's hard twin at many cuts (jets sorted by pT)."""
    rng = np.random.default_rng(width)
    n = 400
    pt = np.sort(rng.exponential(40.0, (n, width)) + 20.0, axis=1)[:, ::-1]
    pt[rng.uniform(size=(n, 1)) < np.linspace(0, 0.6, width)[None, :]] = 0.0  # padding at the end
    pt = -np.sort(-pt, axis=1)
    columns = {
        "jet_pt": pt.astype(np.float32),
        "jet_eta": rng.normal(0, 1.2, (n, width)),
        "jet_phi": rng.uniform(-np.pi, np.pi, (n, width)),
        "jet_mass": rng.uniform(4, 20, (n, width)),
        "jet_btag": np.where(
            rng.uniform(size=(n, width)) < 0.05, -10.0, rng.uniform(0, 1, (n, width))
        ),
    }
    table = trijet_columns(columns, table=True)
    trijets = trijet_candidates(
        *(np.asarray(columns[k], np.float64) for k in ("jet_pt", "jet_eta", "jet_phi", "jet_mass"))
    )
    c = {**columns, **table}
    real = pt > 0
    for jet_cut, btag_cut in [(20.0, 0.2), (30.0, 0.5), (45.0, 0.35), (25.0, 0.8)]:
        selected = (pt.astype(np.float32) > jet_cut) & real
        tagged = (columns["jet_btag"] > btag_cut) & real
        expected = np.asarray(
            best_trijet_mass(trijets, selected * 1.0, tagged * 1.0, hardness=HARD)
        )
        got = np.asarray(_tabulated_mass(c, selected * 1.0, tagged * 1.0))
        region = (selected.sum(1) >= 4) & ((selected & tagged).sum(1) >= 2)
        assert region.sum() > 20
        np.testing.assert_allclose(got[region], expected[region].astype(np.float32), rtol=1e-6)


def test_jer_factors_follow_their_definition(agc_fileset, agc):
    (file,) = agc_fileset["ttbar__nominal"]["files"]
    a = uproot.open(file)["Events"].arrays(["run", "luminosityBlock", "event", "Jet_pt"])
    events = ak.zip(
        {"run": a.run, "luminosityBlock": a.luminosityBlock, "event": a.event,
         "Jet": ak.zip({"pt": a.Jet_pt})},
        depth_limit=1,
    )  # fmt: skip
    got = jet_pt_resolution(events)
    ref = agc.jer_factors(a)
    np.testing.assert_array_equal(ak.to_numpy(ak.flatten(got)), ak.to_numpy(ak.flatten(ref)))
    flat = ak.to_numpy(ak.flatten(got))
    assert flat.size > 5000
    assert abs(flat.mean() - 1.0) < 5 * 0.05 / np.sqrt(flat.size)
    assert abs(flat.std() / 0.05 - 1.0) < 5 / np.sqrt(2 * flat.size)
    again = jet_pt_resolution(events[::-1])[::-1]  # per event and jet, not per position
    np.testing.assert_array_equal(ak.to_numpy(ak.flatten(again)), flat)


@pytest.mark.parametrize(
    ("key", "dataset", "systematic", "expected"),
    [
        ("4j1b", "ttbar__nominal", "nominal", "4j1b_ttbar"),
        ("4j2b", "ttbar__ME_var", "nominal", "4j2b_ttbar_ME_var"),
        ("4j2b", "wjets__nominal", "pt_scale_up", "4j2b_wjets_pt_scale_up"),
        ("4j2b_btag_var_0_up", "ttbar__nominal", "nominal", "4j2b_ttbar_btag_var_0_up"),
        ("4j1b_scale_var_down", "wjets__nominal", "nominal", "4j1b_wjets_scale_var_down"),
        ("4j1b_scale_var_down", "ttbar__nominal", "nominal", None),
        ("4j1b_btag_var_1_up", "ttbar__PS_var", "nominal", None),
        ("4j1b", "ttbar__PS_var", "pt_res_up", None),
    ],
)
def test_output_names_are_the_agcs(key, dataset, systematic, expected):
    process, variation = dataset.split("__")
    chunk = Chunk(dataset, "f.root", "Events", 0, 1, {"process": process, "variation": variation})
    assert AGCTtbarProcessor().output_name(key, chunk, systematic) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"max_jets": 3}, "max_jets must be an integer from 4 to 16"),
        ({"fill": "histogram"}, "fill must be one of ['kde', 'sigmoid']"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"trijet_choice": "first"}, "trijet_choice must be one of ['fixed', 'soft']"),
        ({"bandwidth": 0.0}, "bandwidth must be a positive finite number"),
    ],
)
def test_bad_options_are_config_errors(options, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        AGCTtbarProcessor(**options)


def test_optional_parameters():
    processor = get_processor("agc_ttbar", jet_eta=True, observable_window=True)
    assert processor.parameter_names == (
        "lepton_pt",
        "jet_pt",
        "btag",
        "jet_eta",
        "obs_low",
        "obs_high",
    )
    assert processor.default_params()["jet_eta"] == 2.4
    assert processor.fingerprint() != AGCTtbarProcessor().fingerprint()


def test_registry_errors():
    assert processor_class("diffana.processors.agc_ttbar:AGCTtbarProcessor") is AGCTtbarProcessor
    with pytest.raises(ConfigError, match="did you mean agc_ttbar"):
        processor_class("agc_tbar")
    with pytest.raises(ConfigError, match=r"not a diffana\.processors\.Processor subclass"):
        processor_class("collections:OrderedDict")
    with pytest.raises(ConfigError, match="cannot import"):
        processor_class("diffana.nowhere:Thing")


def test_missing_metadata_is_a_config_error(real_file, agc):
    fileset = {"ttbar__nominal": {"files": {real_file: "Events"}, "metadata": {"process": "ttbar"}}}
    with pytest.raises(ConfigError, match=r"lacks \['variation', 'xsec', 'nevts'\]"):
        Engine(AGCTtbarProcessor(), fileset, chunk_size=agc.chunk).skim()


def test_data_weighs_one_and_has_no_systematics(real_file, agc):
    params = {"lepton_pt": 20.0, "jet_pt": 20.0, "btag": 0.2}
    data = {
        "data__nominal": {
            "files": {real_file: "Events"},
            "metadata": {"process": "data", "variation": "nominal"},
        }
    }
    with Engine(AGCTtbarProcessor(), data, chunk_size=agc.chunk, block_size=agc.block) as engine:
        got = engine.hard_histograms(params)
    assert sorted(got) == ["4j1b_data", "4j2b_data"]
    meta = {"process": "ttbar", "variation": "nominal", "xsec": 200 / 3378.0, "nevts": 200}
    ref = agc.histograms({"x": {"files": {real_file: "Events"}, "metadata": meta}}, params)
    for region in ("4j1b", "4j2b"):
        np.testing.assert_allclose(
            got[f"{region}_data"].values(flow=True),
            ref[f"{region}_ttbar"].values(flow=True),
            rtol=1e-12,
        )


def test_jet_eta_parameter_at_its_default_is_the_agc(real_fileset, agc):
    """With the eta limit as a parameter (trijets scanned, not tabulated), 2.4 is the AGC again."""
    params = {"lepton_pt": 20.0, "jet_pt": 20.0, "btag": 0.2}
    processor = AGCTtbarProcessor(jet_eta=True)
    with Engine(processor, real_fileset, chunk_size=agc.chunk, block_size=agc.block) as engine:
        got = engine.hard_histograms({**params, "jet_eta": 2.4})
    ref = agc.histograms(real_fileset, params)
    assert sorted(got) == sorted(ref)
    for name, h in ref.items():
        np.testing.assert_allclose(got[name].values(flow=True), h.values(flow=True), rtol=1e-12)
    assert sum(h.values().sum() for h in ref.values()) > 0
