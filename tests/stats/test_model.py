"""The model against pyhf (numpy backend): configuration, logpdf, expected data, bad input."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import jsonpatch
import numpy as np
import pyhf
import pytest

from diffana.errors import ModelError
from diffana.stats import Model, Workspace, structure_from_spec, yields_from_spec
from diffana.stats.likelihood import logpdf

SETTINGS = {
    "defaults": None,
    "code1_code0": {"normsys": {"interpcode": "code1"}},
    "code4_code2": {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code2"}},
}


def _workspaces(reference_cases, sbottom, shared):
    cases = {c["name"]: c["workspace"] for c in reference_cases["validation_cases"]}
    cases.update({c["name"]: c["workspace"] for c in reference_cases["additional_references"][:2]})
    for region, patch in (("A", "1300_205_60"), ("B", "1400_550_60"), ("C", "1600_850_60")):
        bkg = sbottom[f"Region{region}/BkgOnly.json"]
        signal = sbottom[f"Region{region}/patch.sbottom_{patch}.json"]
        cases[f"sbottom_{region}"] = jsonpatch.apply_patch(bkg, signal)
    agc = shared / "oracles" / "agc-reference" / "workspace_all_files_per_process.json"
    cases["agc_all_files"] = __import__("json").loads(agc.read_text())
    return cases


@pytest.fixture(scope="module")
def workspaces(reference_cases, sbottom, shared):
    return _workspaces(reference_cases, sbottom, shared)


def _pair(workspace, settings):
    kw = {} if settings is None else {"modifier_settings": settings}
    ours = Workspace(workspace).model(**kw)
    theirs = pyhf.Workspace(workspace).model(**kw)
    return ours, theirs, np.asarray(pyhf.Workspace(workspace).data(theirs))


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_config_logpdf_expected_data_match_pyhf(workspaces, setting):
    rng = np.random.default_rng(7)
    for name, workspace in workspaces.items():
        if setting != "defaults" and ("sbottom" in name or "agc" in name):
            continue  # the large models once, with pyhf's default codes
        ours, theirs, data = _pair(workspace, SETTINGS[setting])
        oc, tc = ours.config, theirs.config
        for attr in ("par_names", "par_order", "channels", "samples", "modifiers", "parameters"):
            assert getattr(oc, attr) == getattr(tc, attr), (name, attr)
        for attr in ("poi_index", "poi_name", "npars", "nmaindata", "nauxdata", "channel_nbins"):
            assert getattr(oc, attr) == getattr(tc, attr), (name, attr)
        assert oc.suggested_init() == tc.suggested_init(), name
        assert oc.suggested_bounds() == tc.suggested_bounds(), name
        assert oc.suggested_fixed() == tc.suggested_fixed(), name
        assert oc.auxdata_order == tc.auxdata_order, name
        np.testing.assert_allclose(oc.auxdata, tc.auxdata, rtol=1e-14)
        for par in tc.par_order:
            assert oc.par_slice(par) == tc.par_slice(par)
            assert oc.param_set(par).suggested_bounds == tc.param_set(par).suggested_bounds
        bounds = np.asarray(tc.suggested_bounds(), dtype=float)
        # code2 in pyhf 0.7.6 is discontinuous outside |alpha| <= 1 (scikit-hep/pyhf#2729)
        span = 1.0 if setting == "code4_code2" else 3.0
        for _ in range(3):
            pars = rng.uniform(np.maximum(bounds[:, 0], -span), np.minimum(bounds[:, 1], span))
            np.testing.assert_allclose(ours.logpdf(pars, data), theirs.logpdf(pars, data), 1e-12)
            np.testing.assert_allclose(
                ours.expected_data(pars), theirs.expected_data(pars), rtol=1e-12
            )
        np.testing.assert_allclose(
            ours.expected_actualdata(pars), theirs.expected_actualdata(pars), rtol=1e-12
        )
        np.testing.assert_allclose(
            ours.expected_auxdata(pars), theirs.expected_data(pars)[tc.nmaindata :], rtol=1e-12
        )


def test_clipping_matches_pyhf(workspaces):
    spec = {"channels": workspaces["2bin_2channel_coupledhistosys_mu1"]["channels"]}
    kw = {"clip_sample_data": 45.0, "clip_bin_data": 150.0}
    ours, theirs = Model(spec, **kw), pyhf.Model(spec, **kw)
    pars = [1.5, -2.0]
    np.testing.assert_allclose(ours.expected_data(pars), theirs.expected_data(pars), rtol=1e-13)


def test_set_poi_and_poi_less_model(workspaces):
    workspace = workspaces["2bin_2channel_coupledshapefactor_mu1"]
    model = Workspace(workspace).model(poi_name=None)
    assert model.config.poi_index is None
    model.config.set_poi("mu")
    assert model.config.poi_index == pyhf.Workspace(workspace).model().config.poi_index
    with pytest.raises(ModelError, match="components"):
        model.config.set_poi("coupled_shapefactor")


def _simple_spec():
    return {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "sig",
                        "data": [5.0, 6.0],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "bkg",
                        "data": [50.0, 60.0],
                        "modifiers": [
                            {"name": "unc", "type": "shapesys", "data": [5.0, 6.0]},
                            {"name": "n", "type": "normsys", "data": {"lo": 0.9, "hi": 1.1}},
                        ],
                    },
                ],
            }
        ]
    }


def _mutate(path, value):
    spec = _simple_spec()
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return spec


BAD_SPECS = {
    "unknown modifier type": (
        _mutate(("channels", 0, "samples", 0, "modifiers", 0, "type"), "normfactr"),
        "unknown modifier type 'normfactr'",
    ),
    "bin-count mismatch": (
        _mutate(("channels", 0, "samples", 1, "data"), [50.0, 60.0, 70.0]),
        "'bkg'.*3 bins but the channel has 2",
    ),
    "negative total yield": (
        _mutate(("channels", 0, "samples", 1, "data"), [-50.0, 60.0]),
        "negative in bins \\[0\\]",
    ),
    "NaN yield": (
        _mutate(("channels", 0, "samples", 0, "data"), [float("nan"), 6.0]),
        "'sig'.*non-finite",
    ),
    "negative uncertainty": (
        _mutate(("channels", 0, "samples", 1, "modifiers", 0, "data"), [5.0, -6.0]),
        "'unc'.*negative",
    ),
    "histosys without hi_data": (
        _mutate(
            ("channels", 0, "samples", 1, "modifiers", 1),
            {"name": "h", "type": "histosys", "data": {"lo_data": [1.0, 2.0]}},
        ),
        "histosys data must be",
    ),
    "no channels": ({"channels": []}, "no channels"),
    "channel without samples": ({"channels": [{"name": "sr", "samples": []}]}, "no samples"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_specs_raise_model_errors_naming_the_place(case):
    spec, pattern = BAD_SPECS[case]
    with pytest.raises(ModelError, match=pattern):
        Model(spec)


def test_bad_model_options():
    with pytest.raises(ModelError, match=r"'nope' is not a parameter.*mu, n, unc"):
        Model(_simple_spec(), poi_name="nope")
    with pytest.raises(ModelError, match="interpcode must be one of"):
        Model(_simple_spec(), modifier_settings={"normsys": {"interpcode": "code0"}})
    with pytest.raises(ModelError, match="unsupported options"):
        Model(_simple_spec(), batch_sizee=3)
    lumi = copy.deepcopy(_simple_spec())
    lumi["channels"][0]["samples"][0]["modifiers"].append(
        {"name": "lumi", "type": "lumi", "data": None}
    )
    with pytest.raises(ModelError, match="'lumi' needs 'inits'"):
        Model(lumi)
    reused = copy.deepcopy(_simple_spec())
    reused["channels"][0]["samples"][0]["modifiers"].append(
        {"name": "unc", "type": "shapesys", "data": [1.0, 1.0]}
    )
    with pytest.raises(ModelError, match="already used"):
        Model(reused)
    clash = copy.deepcopy(_simple_spec())
    clash["channels"][0]["samples"][0]["modifiers"].append(
        {"name": "n", "type": "normfactor", "data": None}
    )
    with pytest.raises(ModelError, match="disagree"):
        Model(clash)
    model = Model(_simple_spec())
    with pytest.raises(ModelError, match="data has length 3"):
        model.logpdf(model.config.suggested_init(), [1.0, 2.0, 3.0])
    assert issubclass(ModelError, ValueError)


def test_yields_from_a_traced_spec_carry_gradients():
    """d logpdf / d (a spec number) through yields_from_spec inside jit equals finite differences."""
    structure = structure_from_spec(_simple_spec())
    data = jnp.array([57.0, 63.0, 100.0, 100.0])
    pars = jnp.array([1.2, 0.3, 1.05, 0.97])

    def value(scale):
        spec = _simple_spec()
        sample = spec["channels"][0]["samples"][1]
        sample["data"] = jnp.array([50.0, 60.0]) * scale
        sample["modifiers"][0]["data"] = jnp.array([5.0, 6.0]) * jnp.sqrt(scale)
        sample["modifiers"][1]["data"] = {"lo": 0.9, "hi": 1.1 * scale}
        y = yields_from_spec(structure, spec)
        full = jnp.concatenate([data[:2], data[2:] * 0 + jnp.array([100.0, 100.0])])
        return logpdf(structure, y, pars, full)

    grad = jax.jit(jax.grad(value))(1.1)
    h = 1e-6
    fd = (value(1.1 + h) - value(1.1 - h)) / (2 * h)
    assert float(grad) == pytest.approx(float(fd), rel=1e-7)


def test_structure_is_shared_between_equal_specs():
    a = structure_from_spec(_simple_spec())
    b = structure_from_spec(copy.deepcopy(_simple_spec()))
    assert a == b
    assert hash(a) == hash(b)
    other = _simple_spec()
    other["channels"][0]["samples"][1]["data"] = [70.0, 80.0]
    other["channels"][0]["samples"][1]["modifiers"][0]["data"] = [7.0, 9.0]
    assert structure_from_spec(other) == a  # yields are not part of the structure
    renamed = _simple_spec()
    renamed["channels"][0]["samples"][0]["name"] = "signal"
    assert structure_from_spec(renamed) == a  # nor are names: the same compiled program
    with pytest.raises(ModelError, match="not part of the model structure"):
        yields_from_spec(a, renamed)
    extended = _simple_spec()
    extended["channels"][0]["samples"][0]["modifiers"].append(
        {"name": "s", "type": "normsys", "data": {"lo": 0.8, "hi": 1.2}}
    )
    assert structure_from_spec(extended) != a
