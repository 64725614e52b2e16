"""The cabinetry-style model builder against cabinetry's own AGC workspaces, hist and pyhf."""

from __future__ import annotations

import copy
import json

import hist
import jax
import jax.numpy as jnp
import numpy as np
import pyhf
import pytest
import yaml

from diffana.errors import ConfigError, WorkspaceError
from diffana.stats import likelihood
from diffana.stats.build import build_spec, to_json
from diffana.stats.build_config import parse_config
from diffana.stats.build_histograms import Histogram, agc_pseudodata, rebin
from diffana.stats.objectives import poi_uncertainty
from diffana.stats.structure import structure_from_spec
from diffana.stats.yields import yields_from_spec

LUMI = 3378.0  # /pb
XSEC = {  # pb, AGC v2
    "ttbar": 729.84,
    "single_top_s_chan": 3.2944,
    "single_top_t_chan": (36.993 + 22.175) / 0.252,
    "single_top_tW": 75.842,
    "wjets": 61457 * 0.252,
}
ALT_TTBAR = ("scaledown", "scaleup", "ME_var", "PS_var")  # separate samples, own event counts
FILES = {"1": 1, "5": 5, "all": None}  # files per process of each reference


def _sample_of(name: str) -> tuple[str, str] | None:
    """(process, sample variation) of an AGC histogram name, None for pseudo-data."""
    rest = name.split("_", 1)[1]
    for process in sorted(XSEC, key=len, reverse=True):
        if rest.startswith(process):
            variation = rest[len(process) + 1 :]
            return process, variation if variation in ALT_TTBAR else "nominal"
    return None


def _reference_histograms(shared, tag: str) -> dict[str, dict]:
    """The AGC's histograms with variances w x content, w = xsec x lumi / generated events."""
    ref = shared / "oracles" / "agc-reference"
    inputs = json.loads((ref / "nanoaod_inputs.json").read_text())
    raw = json.loads((ref / f"histos_{tag}_file_per_process.json").read_text())
    out = {}
    for name, h in raw.items():
        sample = _sample_of(name)
        out[name] = {"values": h["contents"], "edges": h["edges"]}
        if sample is not None:
            files = inputs[sample[0]][sample[1]]["files"][: FILES[tag]]
            weight = XSEC[sample[0]] * LUMI / sum(f["nevts"] for f in files)
            out[name]["variances"] = [weight * c for c in h["contents"]]
    return out


@pytest.fixture(scope="module")
def config(shared):
    return yaml.safe_load((shared / "oracles/agc-reference/cabinetry_config.yml").read_text())


@pytest.fixture(scope="module", params=["5", "all"])
def case(request, shared, config):
    """(histograms, our spec as JSON, cabinetry's workspace) for 5 and all files per process."""
    tag = request.param
    histograms = _reference_histograms(shared, tag)
    reference = json.loads(
        (shared / f"oracles/agc-reference/workspace_{tag}_files_per_process.json").read_text()
    )
    return histograms, to_json(build_spec(config, histograms)), reference


def _assert_same(ours, ref, path="spec"):
    """Same keys, list lengths, strings and order; numbers to 1e-9 relative."""
    if isinstance(ref, dict):
        assert set(ours) == set(ref), path
        for key in ref:
            _assert_same(ours[key], ref[key], f"{path}.{key}")
    elif isinstance(ref, list):
        assert isinstance(ours, list), path
        assert len(ours) == len(ref), path
        for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
            _assert_same(a, b, f"{path}[{i}]")
    elif isinstance(ref, float) and not isinstance(ref, bool):
        assert ours == pytest.approx(ref, rel=1e-9, abs=0.0), path
    else:
        assert ours == ref, path
        assert type(ours) is type(ref) or {type(ours), type(ref)} <= {int, float}, path


def test_reproduces_cabinetry_workspace(case):
    _, spec, reference = case
    _assert_same(spec, reference)
    modifiers = [m["name"] for m in spec["channels"][0]["samples"][0]["modifiers"]]
    assert modifiers[:3] == ["staterror_4j1b-CR", "ttbar_norm", "ME variation"]


@pytest.fixture
def pyhf_exact():
    """pyhf with exact gradients (JAX) and a tight scipy tolerance, restored afterwards.

    The numpy backend's finite-difference gradients stop SLSQP ~1e-3 from the optimum on this
    34-parameter model, and MIGRAD fails on the all-files one.
    """
    previous = pyhf.get_backend()
    pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    yield
    pyhf.set_backend(*previous)


def test_best_fit_equals_cabinetry_workspace_fit(case, pyhf_exact):
    """pyhf finds the same best fit on our spec and on cabinetry's, and the same likelihood."""
    _, spec, reference = case
    fits = []
    for ws_spec in (spec, reference):
        workspace = pyhf.Workspace(ws_spec)
        model = workspace.model()
        data = workspace.data(model)
        bestfit, twice_nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
        fits.append((model, data, np.asarray(bestfit), float(twice_nll)))
    (model, data, ours, nll_ours), (ref_model, ref_data, theirs, nll_theirs) = fits
    assert model.config.par_names == ref_model.config.par_names
    np.testing.assert_allclose(data, ref_data, rtol=1e-12)
    assert nll_ours == pytest.approx(nll_theirs, rel=1e-10)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5)  # the optimiser's resolution
    poi = model.config.poi_index
    assert 0.9 < ours[poi] < 1.0  # the AGC reports ttbar_norm = 0.960 +- 0.088 for 5 files
    rng = np.random.default_rng(0)
    for pars in (theirs, theirs + rng.normal(0, 0.05, theirs.size)):
        assert float(model.logpdf(pars, data)[0]) == pytest.approx(
            float(ref_model.logpdf(pars, ref_data)[0]), rel=1e-12
        )


@pytest.mark.parametrize("tag", ["1", "5", "all"])
def test_agc_pseudodata_equals_the_reference_pseudodata(shared, tag):
    histograms = _reference_histograms(shared, tag)
    built = agc_pseudodata(histograms)
    for region in ("4j1b", "4j2b"):
        ref = histograms[f"{region}_pseudodata"]
        ours = built[f"{region}_pseudodata"]
        assert ours.edges == tuple(ref["edges"])
        np.testing.assert_allclose(ours.values, ref["values"], rtol=1e-12, atol=0)
        me, ps, wjets = (
            histograms[f"{region}_{s}"]["variances"]
            for s in ("ttbar_ME_var", "ttbar_PS_var", "wjets")
        )
        expected = (np.array(me) + np.array(ps)) / 4 + np.array(wjets)
        np.testing.assert_allclose(ours.variances, expected, rtol=1e-12)


def test_build_spec_without_pseudodata_uses_agc_pseudodata(shared, config):
    histograms = _reference_histograms(shared, "5")
    given = {k: v for k, v in histograms.items() if "pseudodata" not in k}
    with pytest.raises(WorkspaceError, match="4j1b_pseudodata"):
        build_spec(config, given)
    spec = to_json(build_spec(config, {**agc_pseudodata(given), **given}))
    reference = to_json(build_spec(config, histograms))
    _assert_same(spec["observations"], reference["observations"])


def test_rebin_equals_the_agc_hist_slice():
    """The AGC rebins with ``h[110j::hist.rebin(2)]``; cabinetry then drops the flow bins."""
    rng = np.random.default_rng(1)
    h = hist.Hist(hist.axis.Regular(25, 50, 550), storage=hist.storage.Weight())
    h.view(flow=True).value = rng.uniform(0, 100, 27)
    h.view(flow=True).variance = rng.uniform(0, 10, 27)
    agc = h[110j :: hist.rebin(2)]
    binning = agc.axes[0].edges
    edges = h.axes[0].edges
    np.testing.assert_allclose(rebin(h.values(flow=True), edges, binning), agc.values(), rtol=1e-15)
    np.testing.assert_allclose(rebin(h.values(), edges, binning), agc.values(), rtol=1e-15)
    np.testing.assert_allclose(rebin(h.variances(flow=True), edges, binning), agc.variances())
    np.testing.assert_array_equal(rebin(h.values(flow=True), edges), h.values())


def test_hist_objects_give_the_same_spec(shared, config, case):
    histograms, spec, _ = case
    as_hist = {}
    for name, h in histograms.items():
        if "variances" not in h:
            as_hist[name] = h
            continue
        hh = hist.Hist(hist.axis.Variable(h["edges"]), storage=hist.storage.Weight())
        hh.view(flow=True).value = h["values"]
        hh.view(flow=True).variance = h["variances"]
        as_hist[name] = hh
    _assert_same(to_json(build_spec(config, as_hist)), spec)


def _scalar_of_spec(spec, coefficients):
    """A fixed random linear combination of every array in the spec."""
    leaves = jax.tree_util.tree_leaves(spec)
    arrays = [jnp.ravel(x) for x in leaves if isinstance(x, jax.Array)]
    flat = jnp.concatenate(arrays)
    return jnp.sum(flat * coefficients[: flat.size]), flat.size


def test_spec_is_differentiable_and_jittable(shared, config):
    """d(linear combination of the spec)/d(histogram values) equals central differences."""
    histograms = _reference_histograms(shared, "5")
    names = ["4j1b_ttbar", "4j1b_ttbar_PS_var", "4j2b_wjets_scale_var_up", "4j2b_pseudodata"]
    coefficients = jnp.asarray(np.random.default_rng(2).normal(size=10_000))
    rest = {k: v for k, v in histograms.items() if k not in names}

    @jax.jit
    def f(values):
        hists = dict(rest)
        for name in names:
            h = histograms[name]
            hists[name] = Histogram(values[name], h["edges"], h.get("variances"))
        return _scalar_of_spec(build_spec(config, hists), coefficients)[0]

    x0 = {name: jnp.asarray(histograms[name]["values"], dtype=float) for name in names}
    grad = jax.grad(f)(x0)
    for name in names:
        for i in (0, 3, 5, 12, 26):  # 0, 26: flow; 3: 90-110 GeV, below the model's range
            step = 1e-4 * max(1.0, float(x0[name][i]))
            up = {**x0, name: x0[name].at[i].add(step)}
            down = {**x0, name: x0[name].at[i].add(-step)}
            fd = (f(up) - f(down)) / (2 * step)
            assert float(grad[name][i]) == pytest.approx(float(fd), rel=1e-6, abs=1e-9), (name, i)
    for name in names:
        assert [float(grad[name][i]) for i in (0, 3, 26)] == [0.0, 0.0, 0.0]
        assert float(grad[name][12]) != 0.0


def test_symmetrised_up_mirrors_symmetrised_down():
    """``Up: Symmetrize`` with template D gives (hi, lo) of ``Down: Symmetrize`` with Up = D."""
    edges = [0, 1, 2, 3]
    hists = {
        "r_data": {"values": [5.0, 6.0, 7.0], "edges": edges},
        "r_s": {"values": [4.0, 5.0, 6.0], "variances": [4.0, 5.0, 6.0], "edges": edges},
        "r_s_var": {"values": [3.0, 6.0, 8.0], "edges": edges},
    }

    def systematic(up, down):
        return {
            "General": {"Measurement": "m", "POI": "mu"},
            "Regions": [{"Name": "r", "RegionPath": "r"}],
            "Samples": [
                {"Name": "data", "SamplePath": "data", "Data": True},
                {"Name": "s", "SamplePath": "s"},
            ],
            "NormFactors": [{"Name": "mu", "Samples": "s"}],
            "Systematics": [{"Name": "v", "Type": "NormPlusShape", "Up": up, "Down": down}],
        }

    sym = {"Symmetrize": True}
    var = {"VariationPath": "_var"}
    down_sym = to_json(build_spec(systematic(var, sym), hists))["channels"][0]["samples"][0]
    up_sym = to_json(build_spec(systematic(sym, var), hists))["channels"][0]["samples"][0]
    norm_d, shape_d = down_sym["modifiers"][2:]
    norm_u, shape_u = up_sym["modifiers"][2:]
    assert norm_u["data"] == {"hi": norm_d["data"]["lo"], "lo": norm_d["data"]["hi"]}
    assert shape_u["data"] == {
        "hi_data": shape_d["data"]["lo_data"],
        "lo_data": shape_d["data"]["hi_data"],
    }
    total = 15.0
    assert norm_d["data"]["hi"] == pytest.approx(17.0 / total)  # sum(var) / sum(nominal)
    assert norm_d["data"]["lo"] == pytest.approx(2 - 17.0 / total)
    np.testing.assert_allclose(shape_d["data"]["hi_data"], np.array([3.0, 6.0, 8.0]) * total / 17)
    pyhf.Workspace(to_json(build_spec(systematic(var, sym), hists)))  # valid pyhf


def test_one_bin_channel_has_no_histosys_and_fixed_parameters():
    edges = [0, 1, 2]
    hists = {
        "r_data": {"values": [5.0, 6.0], "edges": edges},
        "r_s": {"values": [4.0, 5.0], "variances": [0.0, -1.0], "edges": edges},
        "r_s_up": {"values": [5.0, 5.0], "edges": edges},
        "r_s_dn": {"values": [4.0, 4.0], "edges": edges},
    }
    cfg = {
        "General": {"Measurement": "m", "POI": "mu", "Fixed": [{"Name": "v", "Value": 0.5}]},
        "Regions": [{"Name": "r 1", "RegionPath": "r", "Binning": [0, 2]}],
        "Samples": [
            {"Name": "data", "SamplePath": "data", "Data": True},
            {"Name": "s", "SamplePath": "s"},
        ],
        "NormFactors": [{"Name": "mu", "Samples": "s", "Nominal": 1, "Bounds": [0, 5]}],
        "Systematics": [
            {
                "Name": "v",
                "Type": "NormPlusShape",
                "Up": {"VariationPath": "_up"},
                "Down": {"VariationPath": "_dn"},
            },
            {
                "Name": "lumi",
                "Type": "Normalization",
                "Up": {"Normalization": 0.1},
                "Down": {"Normalization": -0.05},
            },
        ],
    }
    spec = to_json(build_spec(cfg, hists))
    sample = spec["channels"][0]["samples"][0]
    assert sample["data"] == [9.0]
    assert sample["modifiers"] == [
        {"name": "staterror_r-1", "type": "staterror", "data": [0.0]},  # sqrt(max(0, -1))
        {"name": "mu", "type": "normfactor", "data": None},
        {"name": "v", "type": "normsys", "data": {"hi": 10.0 / 9.0, "lo": 8.0 / 9.0}},
        {"name": "lumi", "type": "normsys", "data": {"hi": 1.1, "lo": 0.95}},
    ]
    assert spec["measurements"][0]["config"]["parameters"] == [
        {"name": "mu", "inits": [1.0], "bounds": [[0.0, 5.0]]},
        {"name": "v", "inits": [0.5], "fixed": True},
    ]
    pyhf.Workspace(spec)


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (
            lambda c: c["Systematics"][3]["Up"].update(VariationPaht="_x"),
            ConfigError,
            r"Systematics\[3\]\.Up: unknown key 'VariationPaht' \(did you mean 'VariationPath'",
        ),
        (
            lambda c: c["Systematics"][0].update(Samples="ttbarr"),
            ConfigError,
            r"Systematics\[0\]\.Samples: 'ttbarr' is not defined \(did you mean 'ttbar'",
        ),
        (
            lambda c: c["Systematics"][0].update(Smoothing={"Algorithm": "353QH, twice"}),
            ConfigError,
            "Smoothing: not supported",
        ),
        (lambda c: c["Samples"][1].update(Tree="Events"), ConfigError, r"Samples\[1\]\.Tree"),
        (lambda c: c["General"].update(POI="ttbar_nrom"), ConfigError, "did you mean 'ttbar_norm'"),
        (lambda c: c["Samples"][1].update(Data=True), ConfigError, "exactly one data sample"),
        (lambda c: c["Regions"][0].update(Binning=[110, 100]), ConfigError, "increasing strictly"),
        (lambda c: c.pop("NormFactors"), ConfigError, "'NormFactors' is missing"),
        (
            lambda c: c["Regions"][0].update(Binning=[110, 155, 550]),
            WorkspaceError,
            r"region '4j1b CR': histogram '4j1b_ttbar': the Binning edge 155 is not one of its",
        ),
        (
            lambda c: c["Systematics"][5].update(Up={"VariationPath": "_btag_var_0_upp"}),
            WorkspaceError,
            r"'4j1b_ttbar_btag_var_0_upp' \('b-tag NP 1' Up.*similar names",
        ),
    ],
)
def test_bad_config_gives_a_clear_error(config, shared, edit, error, match):
    histograms = _reference_histograms(shared, "5")
    bad = copy.deepcopy(config)
    edit(bad)
    with pytest.raises(error, match=match):
        build_spec(bad, histograms)


def test_bad_histograms_give_a_clear_error(config, shared):
    histograms = _reference_histograms(shared, "5")
    no_var = {
        **histograms,
        "4j2b_wjets": {k: v for k, v in histograms["4j2b_wjets"].items() if k != "variances"},
    }
    with pytest.raises(WorkspaceError, match=r"'4j2b_wjets' has no variances.*DisableStaterror"):
        build_spec(config, no_var)
    short = {**histograms, "4j1b_tW": None}
    short["4j1b_single_top_tW"] = {**histograms["4j1b_single_top_tW"], "values": [1.0] * 20}
    with pytest.raises(WorkspaceError, match="20 bin values do not fit 26 edges"):
        build_spec(config, short)
    assert parse_config(config).poi == "ttbar_norm"


# histograms the objective is differentiated against: nominal, alternative-sample and
# object-level variations, in both regions
GRAD_NAMES = ("4j1b_ttbar", "4j2b_ttbar_PS_var", "4j1b_wjets", "4j2b_single_top_tW_pt_scale_up")


def _model_spec(workspace: dict) -> dict:
    return {
        "channels": workspace["channels"],
        "parameters": workspace["measurements"][0]["config"]["parameters"],
    }


@pytest.fixture(scope="module")
def agc(shared):
    config = yaml.safe_load((shared / "oracles/agc-reference/cabinetry_config.yml").read_text())
    histograms = _reference_histograms(shared, "5")
    reference = json.loads(
        (shared / "oracles/agc-reference/workspace_5_files_per_process.json").read_text()
    )
    structure = structure_from_spec(_model_spec(reference), poi_name="ttbar_norm")
    return config, histograms, reference, structure


def test_core_reads_the_same_yields_from_our_jnp_spec(agc):
    config, histograms, reference, structure = agc
    ours = yields_from_spec(structure, _model_spec(build_spec(config, histograms)))
    theirs = yields_from_spec(structure, _model_spec(reference))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_gradient_of_expected_ttbar_norm_uncertainty_matches_finite_differences(agc):
    r"""d sigma(ttbar_norm) / d histogram bins, through builder, fit and Hessian, equals central FD.

    The objective is the core's ``poi_uncertainty``: a fit to the Asimov data at the nominal
    parameters with every nuisance parameter profiled, and sigma from the Hessian there. As the
    best fit of Asimov data is :math:`\theta_0` itself, its value must equal
    :math:`\sqrt{[H^{-1}]_{\mu\mu}}` with :math:`H` the autodiff Hessian of the NLL at
    :math:`\theta_0` (Cowan, Cranmer, Gross, Vitells, EPJC 71 (2011) 1554).
    """
    config, histograms, _, structure = agc
    rest = {k: v for k, v in histograms.items() if k not in GRAD_NAMES}

    def yields_of(values):
        hists = dict(rest)
        for name in GRAD_NAMES:
            h = histograms[name]
            hists[name] = Histogram(values[name], h["edges"], h["variances"])
        return yields_from_spec(structure, _model_spec(build_spec(config, hists)))

    @jax.jit
    def sigma(values):
        objective = poi_uncertainty(structure, yields_of(values))
        return objective.value, objective.status

    x0 = {name: jnp.asarray(histograms[name]["values"], dtype=float) for name in GRAD_NAMES}
    value, status = sigma(x0)
    assert int(status) == 0
    yields, init = yields_of(x0), jnp.asarray(structure.suggested_init())
    asimov = likelihood.expected_data(structure, yields, init)
    hessian_at = jax.jit(
        jax.hessian(lambda p: likelihood.twice_nll(structure, yields, p, asimov) / 2)
    )
    hessian = hessian_at(init)
    poi = structure.poi_index
    assert float(value) == pytest.approx(float(jnp.linalg.inv(hessian)[poi, poi]) ** 0.5, rel=1e-9)
    assert 0.05 < float(value) < 0.2  # the AGC quotes +-0.088 on its pseudo-data
    grad = jax.jit(jax.grad(lambda v: sigma(v)[0]))(x0)
    for name in GRAD_NAMES:
        for i in (8, 15, 25):  # 130-150, 270-290 and 530-550 GeV
            step = 1e-4 * float(x0[name][i])
            up = sigma({**x0, name: x0[name].at[i].add(step)})[0]
            down = sigma({**x0, name: x0[name].at[i].add(-step)})[0]
            fd = float(up - down) / (2 * step)
            assert float(grad[name][i]) == pytest.approx(fd, rel=1e-5), (name, i)
        assert float(grad[name][3]) == 0.0  # 90-110 GeV is outside the model's binning
