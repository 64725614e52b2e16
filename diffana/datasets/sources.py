"""Objects drawn independently of each other and of the hard process, counted first.

Extra radiation, soft jets, pile-up jets and non-prompt leptons are independent and identically
distributed within an event. For every generated event the generator first draws how many of them
pass the preselection's object requirement (``pT > 20 GeV``, ``|eta| < 2.5``): a thinned Poisson
or negative binomial count is again Poisson or negative binomial. Only for the events the
preselection keeps does it draw how many fail (from their conditional distribution given the
passing count) and the momenta of all, from the spectrum truncated to the pass region or to its
complement. This is exact, and costs in proportion to the written events, not the generated ones.

Objects are returned flat: one entry per object, with the index of its event.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from diffana.datasets.kinematics import logistic_cdf, logistic_eta, lomax, lomax_sf

__all__ = [
    "Counts",
    "FlatObjects",
    "complete_jets",
    "complete_nonprompt",
    "count_jets",
    "count_nonprompt",
    "draw_jets",
    "draw_nonprompt",
]

PT_CUT, ETA_CUT = 20.0, 2.5  # the preselection's object requirement
JET_PT_MIN, JET_ETA_MAX = 15.0, 4.7  # NanoAOD jets
# non-prompt leptons: Lomax pT above 5 GeV, logistic eta within |eta| < 2.4
_NP_PT = (5.0, 8.0, 2.5)
_NP_ETA_WIDTH, _NP_ETA_MAX = 1.0, 2.4


class Counts(NamedTuple):
    """Objects per event, and how many of them pass the preselection's object requirement."""

    total: np.ndarray
    passing: np.ndarray


class FlatObjects(NamedTuple):
    """Objects of many events, one entry each; ``event`` is the index of the event."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    code: np.ndarray  # hadron flavour of a jet, signed PDG id of a lepton


def _central_fraction(width: float, eta_max: float) -> float:
    inner = logistic_cdf(ETA_CUT, width) - logistic_cdf(-ETA_CUT, width)
    return float(inner / (logistic_cdf(eta_max, width) - logistic_cdf(-eta_max, width)))


def _pass_probability(source) -> float:
    return float(
        lomax_sf(PT_CUT, JET_PT_MIN, source.pt_scale, source.pt_alpha)
        * _central_fraction(source.eta_width, JET_ETA_MAX)
    )


def _thinned(mean: float, shape: float, p: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of a negative binomial (Poisson if ``shape`` is infinite) thinned with probability p.

    A thinned negative binomial is negative binomial with the same shape and mean ``mean * p``.
    """
    if mean * p <= 0:
        return np.zeros(n, dtype=np.int64)
    if math.isinf(shape):
        return rng.poisson(mean * p, n)
    return rng.negative_binomial(shape, shape / (shape + mean * p), n)


def _rest(mean: float, shape: float, p: float, passing: np.ndarray, rng) -> np.ndarray:
    """Counts of the objects that fail, given the counts that pass.

    Poisson: independent, with mean ``mean * (1 - p)``. Negative binomial, a Poisson whose mean is
    Gamma(shape, mean/shape): given ``k`` passing, the Gamma posterior gives a negative binomial
    of shape ``shape + k`` and probability ``(shape/mean + p) / (shape/mean + 1)``.
    """
    if mean * (1.0 - p) <= 0:
        return np.zeros(passing.size, dtype=np.int64)
    if math.isinf(shape):
        return rng.poisson(mean * (1.0 - p), passing.size)
    rate = shape / mean
    return rng.negative_binomial(shape + passing, (rate + p) / (rate + 1.0))


def count_jets(source, n: int, rng: np.random.Generator) -> np.ndarray:
    """Numbers of jets of a :class:`~diffana.datasets.samples.JetSource` in ``n`` events that pass
    the preselection's object requirement; :func:`complete_jets` adds the others."""
    return _thinned(source.mean, source.shape, _pass_probability(source), n, rng)


def complete_jets(source, passing: np.ndarray, rng: np.random.Generator) -> Counts:
    """All the jets of the events whose passing jets were counted by :func:`count_jets`."""
    rest = _rest(source.mean, source.shape, _pass_probability(source), passing, rng)
    return Counts(passing + rest, passing)


def count_nonprompt(rate: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Numbers of non-prompt leptons (Poisson with mean ``rate``) passing the requirement."""
    return _thinned(rate, math.inf, float(lomax_sf(PT_CUT, *_NP_PT)), n, rng)


def complete_nonprompt(rate: float, passing: np.ndarray, rng: np.random.Generator) -> Counts:
    """All the non-prompt leptons of events whose passing ones were counted."""
    rest = _rest(rate, math.inf, float(lomax_sf(PT_CUT, *_NP_PT)), passing, rng)
    return Counts(passing + rest, passing)


def _flat(counts: Counts) -> tuple[np.ndarray, np.ndarray]:
    """Event index of every object, and whether it is one of its event's passing objects."""
    event = np.repeat(np.arange(counts.total.size), counts.total)
    start = np.cumsum(counts.total) - counts.total
    position = np.arange(event.size) - start[event]
    return event, position < counts.passing[event]


def draw_jets(source, counts: Counts, rng: np.random.Generator) -> FlatObjects:
    """Momenta and hadron flavours of the jets of a source, given their counts."""
    event, passing = _flat(counts)
    m = event.size
    s, a, w = source.pt_scale, source.pt_alpha, source.eta_width
    sf = float(lomax_sf(PT_CUT, JET_PT_MIN, s, a))
    central = _central_fraction(w, JET_ETA_MAX)
    u_pt, u_eta = rng.random(m), rng.random(m)
    # a failing jet is soft (any eta) or hard and forward, in proportion to their probabilities
    soft = ~passing & (rng.random(m) < (1.0 - sf) / (1.0 - sf * central))
    pt = np.where(
        soft, lomax(u_pt, JET_PT_MIN, s, a, PT_CUT), lomax(u_pt, PT_CUT, s + PT_CUT - JET_PT_MIN, a)
    )
    sign = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    eta = np.where(
        passing,
        logistic_eta(u_eta, w, -ETA_CUT, ETA_CUT),
        np.where(
            soft,
            logistic_eta(u_eta, w, -JET_ETA_MAX, JET_ETA_MAX),
            sign * logistic_eta(u_eta, w, ETA_CUT, JET_ETA_MAX),
        ),
    )
    u = rng.random(m)
    flavour = np.where(u < source.frac_b, 5, np.where(u < source.frac_b + source.frac_c, 4, 0))
    return FlatObjects(event, pt, eta, rng.uniform(-np.pi, np.pi, m), flavour)


def draw_nonprompt(counts: Counts, rng: np.random.Generator) -> FlatObjects:
    """Momenta and signed PDG ids (electrons and muons, either charge) of non-prompt leptons."""
    event, passing = _flat(counts)
    m = event.size
    x0, s, a = _NP_PT
    u = rng.random(m)
    pt = np.where(passing, lomax(u, PT_CUT, s + PT_CUT - x0, a), lomax(u, x0, s, a, PT_CUT))
    eta = logistic_eta(rng.random(m), _NP_ETA_WIDTH, -_NP_ETA_MAX, _NP_ETA_MAX)
    pdg = np.where(rng.random(m) < 0.5, 11, 13) * np.where(rng.random(m) < 0.5, 1, -1)
    return FlatObjects(event, pt, eta, rng.uniform(-np.pi, np.pi, m), pdg)
