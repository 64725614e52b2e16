"""HS3 export: structure, and the exported likelihood evaluated by the HS3 rules against pyhf.

``hs3_logpdf`` below reads an HS3 document the way the standard (and ROOT's reader) defines a
``histfactory_dist``, independently of the exporter: it evaluates the likelihood at parameter
values given by HS3 name. pyhf evaluates the original workspace at the same point; the two must
agree. Interpolation is only evaluated where the default codes have closed forms (|alpha| >= 1
or alpha = 0), which is where the test points lie.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pyhf
import pytest
from scipy.special import gammaln
from scipy.stats import norm

from diffana.errors import WorkspaceError
from diffana.stats import Workspace
from diffana.stats.hs3 import to_hs3


def _poisson(n, lam):
    n, lam = np.asarray(n, float), np.asarray(lam, float)
    return float(np.sum(n * np.log(lam) - lam - gammaln(n + 1)))


def _normsys(alpha, hi, lo, interpolation):
    if interpolation is None:
        assert alpha == 0 or abs(alpha) >= 1, alpha  # code4: exponential outside [-1, 1]
    else:
        assert interpolation == "log", interpolation
    return hi**alpha if alpha >= 0 else lo ** (-alpha)


def _histosys(alpha, nom, hi, lo, interpolation):
    if interpolation == "parabolic":  # HS3 2.x HistFactory, "parabolic"
        s, d = (hi + lo) / 2 - nom, (hi - lo) / 2
        if alpha > 1:
            return (2 * s + d) * (alpha - 1) + hi - nom
        if alpha < -1:
            return -(2 * s - d) * (alpha + 1) + lo - nom
        return s * alpha**2 + d * alpha
    if interpolation is None:
        assert alpha == 0 or abs(alpha) >= 1, alpha  # code4p: linear outside [-1, 1]
    else:
        assert interpolation == "lin", interpolation
    return alpha * (hi - nom) if alpha >= 0 else alpha * (nom - lo)


def hs3_logpdf(doc: dict, values: dict[str, float]) -> float:
    """log L of the document's first likelihood at ``values`` (HS3 parameter names)."""
    dists = {d["name"]: d for d in doc["distributions"]}
    datasets = {d["name"]: d for d in doc["data"]}
    consts = {
        p["name"]: p["value"] for p in doc["parameter_points"][0]["parameters"] if p.get("const")
    }
    v = {**values, **consts}
    likelihood = doc["likelihoods"][0]
    total, constraints = 0.0, {}
    for dname, dataname in zip(likelihood["distributions"], likelihood["data"], strict=True):
        dist = dists[dname]
        assert dist["type"] == "histfactory_dist"
        stat = [s for s in dist["samples"] if any(m["type"] == "staterror" for m in s["modifiers"])]
        if stat:
            sumw = np.sum([s["data"]["contents"] for s in stat], axis=0)
            sumw2 = np.sum([np.square(s["data"]["errors"]) for s in stat], axis=0)
            rel = np.where(sumw > 0, np.sqrt(sumw2) / np.where(sumw > 0, sumw, 1), 0.0)
        lam = 0.0
        for sample in dist["samples"]:
            nom = np.asarray(sample["data"]["contents"], float)
            add, mult = np.zeros_like(nom), np.ones_like(nom)
            for mod in sample["modifiers"]:
                kind, interp = mod["type"], mod.get("interpolation")
                if kind == "normfactor":
                    mult = mult * v[mod["parameter"]]
                    if "constraint_name" in mod:
                        c = dists[mod["constraint_name"]]
                        assert c["type"] == "gaussian_dist"
                        constraints[c["name"]] = norm.logpdf(v[c["x"]], v[c["mean"]], c["sigma"])
                elif kind == "normsys":
                    a = v[mod["parameter"]]
                    mult = mult * _normsys(a, mod["data"]["hi"], mod["data"]["lo"], interp)
                    constraints[mod["parameter"]] = norm.logpdf(0.0, a, 1.0)
                elif kind == "histosys":
                    a = v[mod["parameter"]]
                    hi = np.asarray(mod["data"]["hi"]["contents"])
                    lo = np.asarray(mod["data"]["lo"]["contents"])
                    add = add + _histosys(a, nom, hi, lo, interp)
                    constraints[mod["parameter"]] = norm.logpdf(0.0, a, 1.0)
                else:
                    gammas = np.array([v[p] for p in mod["parameters"]])
                    mult = mult * gammas
                    for i, p in enumerate(mod["parameters"]):
                        if kind == "shapesys" and mod["data"]["vals"][i] > 0:
                            tau = mod["data"]["vals"][i]
                            constraints[p] = _poisson(tau, gammas[i] * tau)
                        elif kind == "staterror" and rel[i] > 0:
                            constraints[p] = norm.logpdf(1.0, gammas[i], rel[i])
            lam = lam + (nom + add) * mult
        total += _poisson(datasets[dataname]["contents"], lam)
    return total + sum(constraints.values())


def _hs3_name(label: str) -> str:
    match = re.fullmatch(r"(.*)\[(\d+)\]", label)
    return f"{match[1]}_bin_{match[2]}" if match else label


def _points(model, rng, n: int, defaults: bool):
    """Parameter points: alphas where the interpolations have closed forms, others near inits.

    With the default codes (code4/code4p) alphas are 0 or |alpha| >= 1; otherwise within
    [-1, 1], where pyhf's code2 is HS3's "parabolic" (beyond, pyhf 0.7.6's code2 extrapolation
    drops the hi/lo offset and is discontinuous at |alpha| = 1).
    """
    config = model.config
    kinds = {name: type(spec["paramset"]).__name__ for name, spec in config.par_map.items()}
    fixed = config.suggested_fixed()
    for _ in range(n):
        pars = list(config.suggested_init())
        for name in config.par_order:
            sl = config.par_slice(name)
            for i in range(sl.start, sl.stop):
                if fixed[i]:
                    continue
                if pars[i] == 0.0 and kinds[name] == "constrained_by_normal":
                    choices = [-1.0, 0.0, 1.0, 1.25] if defaults else [-1.0, -0.4, 0.0, 0.7, 1.0]
                    pars[i] = float(rng.choice(choices))
                else:
                    pars[i] = pars[i] * float(rng.uniform(0.85, 1.2))
        yield pars


def _cases(reference_cases, sbottom):
    out = []
    for case in reference_cases["validation_cases"]:
        settings = case["model_settings"]["modifier_settings"]
        out.append((case["name"], case["workspace"], settings))
    for case in reference_cases["additional_references"]:
        if "workspace" in case:
            out.append((case["name"], case["workspace"], None))
    bkg = sbottom["RegionA/BkgOnly.json"]
    signal = pyhf.Workspace(bkg).model(patches=[sbottom["RegionA/patch.sbottom_1300_205_60.json"]])
    spec = dict(bkg, channels=signal.spec["channels"])
    out.append(("sbottom_1300_205_60", spec, None))
    return out


def _shared_staterror(spec: dict) -> dict:
    """The 2-channel case with one staterror spanning both channels and a lumi."""
    spec = copy.deepcopy(spec)
    for channel, errors in zip(spec["channels"], ([3.0, 4.0], [5.0, 2.0]), strict=True):
        channel["samples"][-1]["modifiers"].append(
            {"name": "stat", "type": "staterror", "data": errors}
        )
        channel["samples"][0]["modifiers"].append({"name": "lumi", "type": "lumi", "data": None})
    spec["measurements"][0]["config"]["parameters"].append(
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.04], "bounds": [[0.5, 1.5]], "inits": [1.0]}
    )
    return spec


def test_exported_likelihood_matches_pyhf(reference_cases, sbottom, shared):
    cases = _cases(reference_cases, sbottom)
    agc = shared / "oracles" / "agc-reference" / "workspace_5_files_per_process.json"
    cases.append(("agc_5", json.loads(agc.read_text()), None))
    two = next(c for c in cases if c[0] == "2bin_2channel_mu1")
    cases.append(("shared_staterror_lumi", _shared_staterror(two[1]), None))
    histo = next(c for c in cases if c[0] == "2bin_histosys_mu1")
    cases.append(("code2", histo[1], {"histosys": {"interpcode": "code2"}}))
    rng = np.random.default_rng(7)
    for name, spec, settings in cases:
        doc = json.loads(json.dumps(to_hs3(Workspace(spec), modifier_settings=settings)))
        ws = pyhf.Workspace(spec)
        kwargs = {"modifier_settings": settings} if settings else {}
        model = ws.model(**kwargs)
        data = ws.data(model)
        # pyhf keeps a constant Poisson(1 | 1) = -1 term per shapesys bin without yield or
        # uncertainty, where HS3 makes that parameter constant and has no term
        offset = -sum(
            1.0
            for channel in spec["channels"]
            for sample in channel["samples"]
            for mod in sample["modifiers"]
            if mod["type"] == "shapesys"
            for nom, unc in zip(sample["data"], mod["data"], strict=True)
            if not (nom > 0 and unc > 0)
        )
        defaults = settings is None  # code4/code4p (given settings make the others code1/code0)
        for pars in _points(model, rng, 4, defaults):
            values = dict(zip(map(_hs3_name, model.config.par_names), pars, strict=True))
            expected = float(model.logpdf(pars, data)[0]) - offset
            assert hs3_logpdf(doc, values) == pytest.approx(expected, rel=1e-10, abs=1e-9), name


def test_structure(reference_cases, sbottom):
    for name, spec, settings in _cases(reference_cases, sbottom):
        doc = to_hs3(Workspace(spec), modifier_settings=settings)
        assert doc["metadata"]["hs3_version"] == "0.2", name
        model = pyhf.Workspace(spec).model(**({"modifier_settings": settings} if settings else {}))
        domain = doc["domains"][0]
        assert domain["type"] == "product_domain"
        axes = {a["name"]: (a["min"], a["max"]) for a in domain["axes"]}
        assert list(axes) == [_hs3_name(p) for p in model.config.par_names]
        assert list(axes.values()) == [tuple(b) for b in model.config.suggested_bounds()]
        points = doc["parameter_points"][0]["parameters"]
        const = {p["name"] for p in points if p.get("const")}
        # every parameter a distribution uses is in the domain or a constant (HS3 2.7)
        used = set()
        for dist in doc["distributions"]:
            for sample in dist.get("samples", []):
                for mod in sample["modifiers"]:
                    used |= {mod["parameter"]} if "parameter" in mod else set(mod["parameters"])
            used |= {dist[k] for k in ("x", "mean") if k in dist}
        assert used <= set(axes) | const, name
        names = {d["name"] for d in doc["distributions"]} | {d["name"] for d in doc["data"]}
        likelihood = doc["likelihoods"][0]
        assert set(likelihood["distributions"]) | set(likelihood["data"]) <= names
        analysis = doc["analyses"][0]
        assert analysis["likelihood"] == likelihood["name"]
        assert analysis["domains"] == [domain["name"]]
        assert analysis["parameters_of_interest"] == [model.config.poi_name]
        for data in doc["data"]:
            assert data["type"] == "binned"
            assert data["axes"][0]["nbins"] == len(data["contents"])


def test_background_only_has_no_poi(sbottom):
    doc = to_hs3(Workspace(sbottom["RegionB/BkgOnly.json"]))
    assert "parameters_of_interest" not in doc["analyses"][0]
    assert {d["type"] for d in doc["distributions"]} == {"histfactory_dist", "gaussian_dist"}
    lumi = next(d for d in doc["distributions"] if d["name"] == "lumi_constraint")
    assert lumi["sigma"] == pytest.approx(0.017)


def test_unrepresentable_measurements(reference_cases):
    spec = copy.deepcopy(reference_cases["validation_cases"][4]["workspace"])  # 1bin_normsys
    assert spec["channels"][0]["samples"][1]["modifiers"][0]["type"] == "normsys"
    spec["measurements"][0]["config"]["parameters"].append({"name": "bkg_norm", "auxdata": [0.5]})
    with pytest.raises(WorkspaceError, match=r"sets auxdata of 'bkg_norm'"):
        to_hs3(Workspace(spec))
