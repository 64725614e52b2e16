"""Property-based comparison with pyhf on random models with every modifier type.

Random *structures* (channels, bins, samples, modifiers of all seven types, interpolation codes) are
compared on ``logpdf`` and expected data; random *yields and data* on a structure with every modifier
type are compared on fits and hypothesis tests, with pyhf's SLSQP at ``tolerance=1e-14``. The second
kind keeps one structure, so one compiled program serves every example.
"""

from __future__ import annotations

import math

import numpy as np
import pyhf
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from diffana.stats import Model, infer

CODES = [
    None,
    {"normsys": {"interpcode": "code1"}},
    {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}},
    {"normsys": {"interpcode": "code1"}, "histosys": {"interpcode": "code4p"}},
]
TYPES = ("normfactor", "normsys", "histosys", "shapesys", "staterror", "shapefactor", "lumi")
LUMI = {"name": "lumi", "auxdata": [1.0], "sigmas": [0.05], "bounds": [[0.5, 1.5]], "inits": [1.0]}


@st.composite
def specs(draw):
    positive = st.floats(5.0, 100.0)
    nchannels = draw(st.integers(1, 2))
    channels = []
    for c in range(nchannels):
        nbins = draw(st.integers(1, 3))
        samples = []
        for s in range(draw(st.integers(1, 3))):
            nominal = [draw(positive) for _ in range(nbins)]
            modifiers = [{"name": "mu", "type": "normfactor", "data": None}] if s == 0 else []
            for mtype in draw(st.lists(st.sampled_from(TYPES), max_size=5, unique=True)):
                name = f"{mtype}_{c}_{s}" if mtype in ("shapesys", "shapefactor") else mtype
                if mtype == "staterror":
                    name = f"staterror_{c}"
                if mtype == "normfactor":
                    name = "norm_bkg"
                if mtype == "normsys":
                    lo, hi = draw(st.floats(0.7, 0.99)), draw(st.floats(1.01, 1.3))
                    data = {"lo": lo, "hi": hi}
                elif mtype == "histosys":
                    data = {
                        "lo_data": [n * draw(st.floats(0.8, 1.0)) for n in nominal],
                        "hi_data": [n * draw(st.floats(1.0, 1.25)) for n in nominal],
                    }
                elif mtype in ("shapesys", "staterror"):
                    data = [n * draw(st.floats(0.02, 0.3)) for n in nominal]
                else:
                    data = None
                modifiers.append({"name": name, "type": mtype, "data": data})
            samples.append({"name": f"sample_{s}", "data": nominal, "modifiers": modifiers})
        channels.append({"name": f"channel_{c}", "samples": samples})
    return {"channels": channels, "parameters": [LUMI]}


def _has_lumi(spec):
    return any(
        m["type"] == "lumi" for c in spec["channels"] for s in c["samples"] for m in s["modifiers"]
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), code=st.sampled_from(CODES), seed=st.integers(0, 2**31))
def test_random_structures_logpdf_and_expected_data(spec, code, seed):
    if not _has_lumi(spec):
        spec["parameters"] = []
    kw = {} if code is None else {"modifier_settings": code}
    theirs = pyhf.Model(spec, **kw)
    ours = Model(spec, **kw)
    assert ours.config.par_names == theirs.config.par_names
    assert ours.config.suggested_bounds() == theirs.config.suggested_bounds()
    np.testing.assert_allclose(ours.config.auxdata, theirs.config.auxdata, rtol=1e-14)
    rng = np.random.default_rng(seed)
    bounds = np.asarray(theirs.config.suggested_bounds(), dtype=float)
    pars = rng.uniform(np.maximum(bounds[:, 0], -2.5), np.minimum(bounds[:, 1], 2.5))
    data = np.asarray(theirs.expected_data(theirs.config.suggested_init())) * rng.uniform(
        0.7, 1.3, theirs.config.nmaindata + theirs.config.nauxdata
    )
    np.testing.assert_allclose(ours.logpdf(pars, data), theirs.logpdf(pars, data), rtol=1e-12)
    np.testing.assert_allclose(ours.expected_data(pars), theirs.expected_data(pars), rtol=1e-12)


def _template(values):
    """A two-channel model with all seven modifier types; ``values`` gives its numbers."""
    v = iter(values)
    sig = [next(v) * 10 for _ in range(3)]
    bkg = [next(v) * 60 for _ in range(3)]
    cr = [next(v) * 120 for _ in range(2)]
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {
                        "name": "signal",
                        "data": sig,
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            {"name": "lumi", "type": "lumi", "data": None},
                            {"name": "stat", "type": "staterror", "data": [0.1 * x for x in sig]},
                            {
                                "name": "jes",
                                "type": "histosys",
                                "data": {
                                    "lo_data": [x * next(v) * 0.9 for x in sig],
                                    "hi_data": [x * next(v) * 1.1 for x in sig],
                                },
                            },
                        ],
                    },
                    {
                        "name": "background",
                        "data": bkg,
                        "modifiers": [
                            {"name": "lumi", "type": "lumi", "data": None},
                            {"name": "stat", "type": "staterror", "data": [0.05 * x for x in bkg]},
                            {
                                "name": "shape",
                                "type": "shapesys",
                                "data": [x * 0.1 * next(v) for x in bkg],
                            },
                            {
                                "name": "xsec",
                                "type": "normsys",
                                "data": {"lo": 1 - 0.1 * next(v), "hi": 1 + 0.1 * next(v)},
                            },
                            {
                                "name": "jes",
                                "type": "normsys",
                                "data": {"lo": 1 - 0.05 * next(v), "hi": 1 + 0.05 * next(v)},
                            },
                        ],
                    },
                ],
            },
            {
                "name": "CR",
                "samples": [
                    {
                        "name": "background",
                        "data": cr,
                        "modifiers": [
                            {"name": "lumi", "type": "lumi", "data": None},
                            {"name": "cr_norm", "type": "shapefactor", "data": None},
                            {
                                "name": "xsec",
                                "type": "normsys",
                                "data": {"lo": 1 - 0.1 * next(v), "hi": 1 + 0.1 * next(v)},
                            },
                        ],
                    }
                ],
            },
        ],
        "parameters": [LUMI],
    }


NVALUES = 8 + 6 + 3 + 2 + 2 + 2


@pytest.fixture
def tight_pyhf():
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    yield
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())


# Two multimodal examples (CI, 2026-12-07) where diffana's fits, from pyhf's own initial values,
# stop in a higher local minimum than pyhf's (45.26 vs 39.96; conditional 48.00 vs 47.14).
_MULTIMODAL = [1.5, 1.3135074708784642, 0.6500427592065123, 1.301689107626407, 1.165373044333898]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    values=st.lists(st.floats(0.5, 1.5), min_size=NVALUES, max_size=NVALUES),
    pulls=st.lists(st.floats(0.6, 1.4), min_size=5, max_size=5),
    mu=st.floats(0.5, 3.0),
)
@example(
    values=[*_MULTIMODAL, 0.5, 0.5, 0.6399918450070992, 0.9880541012497769, 0.5,
            0.5271401520512506, 1.3190959330806424, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0,
            1.0, 1.0],
    pulls=[1.0, 1.0, 1.25, 0.625, 0.75],
    mu=1.0,
)  # fmt: skip
@example(
    values=[*_MULTIMODAL, 0.5, 0.5, 0.5, 0.6399918450070992, 0.9880541012497769,
            0.5271401520512506, 1.3190959330806424, 0.5, 1.2771423349314546, 1.0622041902762582,
            1.4989746050516064, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5702145826051033, 0.8274012503206596],
    pulls=[0.6585734026797364, 0.6, 1.178791221633953, 0.6350062977516338, 0.738905549652571],
    mu=1.8766342874469237,
)  # fmt: skip
def test_random_yields_fits_and_hypotests(values, pulls, mu, tight_pyhf):
    """diffana's fits against pyhf's on random models. Both optimisers are local: where the
    likelihood has several minima and one stops in a higher one, that point must still be a
    minimum of the other's likelihood (pyhf started there stays), and the CLs are not compared."""
    spec = _template(values)
    ours, theirs = Model(spec), pyhf.Model(spec)
    expected = np.asarray(theirs.expected_actualdata(theirs.config.suggested_init()))
    data = [*np.round(expected * np.asarray(pulls)).tolist(), *theirs.config.auxdata]
    try:
        _, pyhf_value = pyhf.infer.mle.fit(data, theirs, return_fitted_val=True)
        pyhf_cls = pyhf.infer.hypotest(mu, data, theirs, return_expected_set=True)
    except pyhf.exceptions.FailedMinimization:
        assume(False)  # pyhf's optimiser failed on this example: nothing to compare with
    best, value = infer.mle.fit(data, ours, return_fitted_val=True)
    if float(value) > float(pyhf_value) + 1e-6:
        _assert_a_minimum_for_pyhf(None, data, theirs, best, value)
        return
    assert float(value) <= float(pyhf_value) + 1e-9
    assert math.isclose(float(value), float(pyhf_value), abs_tol=1e-6)
    if _multimodal(mu, data, ours, theirs):
        return  # the two CLs differ because the likelihood is multimodal, not because of a bug
    cls_obs, cls_exp = infer.hypotest(mu, data, ours, return_expected_set=True)
    np.testing.assert_allclose(float(cls_obs), float(pyhf_cls[0]), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(cls_exp, float), np.asarray(pyhf_cls[1], float), rtol=1e-5, atol=1e-12
    )


def _assert_a_minimum_for_pyhf(mu, data, theirs, best, value):
    """diffana's ``value`` is pyhf's ``-2 ln L`` at ``best``, and pyhf's optimiser started at
    ``best`` (conditional on ``mu`` unless ``None``) finds nothing lower: a local minimum."""
    init = np.asarray(best, float).tolist()
    np.testing.assert_allclose(
        float(value), -2 * float(theirs.logpdf(np.asarray(init), data)[0]), rtol=1e-10
    )
    if mu is None:
        _, again = pyhf.infer.mle.fit(data, theirs, init_pars=init, return_fitted_val=True)
    else:
        _, again = pyhf.infer.mle.fixed_poi_fit(
            mu, data, theirs, init_pars=init, return_fitted_val=True
        )
    assert float(again) >= float(value) - 1e-6


def _multimodal(mu, data, ours, theirs):
    """Whether a conditional fit of the hypotest (``mu`` on the data, and on the background-only
    Asimov data) ends in different minima with diffana and with pyhf; the higher of the two is
    checked to be a minimum too (of pyhf's likelihood, started from diffana's best fit, when it is
    diffana's; pyhf's lower one is checked with its own ``logpdf`` at diffana's best fit)."""
    pars, _ = pyhf.infer.mle.fixed_poi_fit(0.0, data, theirs, return_fitted_val=True)
    asimov = theirs.expected_data(pars)
    differ = False
    for observed in (data, asimov):
        _, theirs_value = pyhf.infer.mle.fixed_poi_fit(mu, observed, theirs, return_fitted_val=True)
        best, value = infer.mle.fixed_poi_fit(mu, observed, ours, return_fitted_val=True)
        if float(value) > float(theirs_value) + 1e-6:
            _assert_a_minimum_for_pyhf(mu, observed, theirs, best, value)
        else:
            pyhf_at_ours = -2 * float(theirs.logpdf(np.asarray(best, float), observed)[0])
            np.testing.assert_allclose(float(value), pyhf_at_ours, rtol=1e-10)
        differ |= abs(float(value) - float(theirs_value)) > 1e-6
    return differ
