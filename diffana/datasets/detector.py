"""Detector response of the synthetic dataset: jet energy response, b-tagging, identification.

:class:`Detector` holds the numbers of a CMS-like detector of 2015 with the efficiencies of the
AGC's open-data NanoAOD; every sample shares them. What depends on the event generator (b
fragmentation, the hadronic activity around leptons) comes from
:class:`~diffana.datasets.samples.Physics` as arguments.

- Jet response: ``pT_reco = pT * r``, ``r ~ N(mean, sigma)``, ``sigma^2 = s^2/pT + c^2`` (a
  stochastic and a constant term); b jets respond lower than light jets (neutrinos in b decays).
- ``Jet_btagCSVV2``: a mixture of two Beta distributions per hadron flavour, and the default value
  -10 for jets without usable tracks (as in the 2015 files). At the AGC threshold 0.5 the tag rates
  are about 87 % for b, 40 % for c and 6 % for light jets of 60 GeV; at 0.2 a third of light jets
  are tagged, more of the soft ones.
- ``Jet_jetId``: NanoAOD bits (2 tight, 6 tight + tightLepVeto). A prompt lepton is also
  clustered into a jet, which fails the lepton veto (jetId 2), as in NanoAOD.
- Leptons: prompt ones are mostly tight, isolated and close to the primary vertex; non-prompt ones
  (heavy-flavour decays, fakes) mostly fail identification, isolation or ``sip3d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DETECTOR",
    "Detector",
    "btag_csv",
    "electron_id",
    "jet_id",
    "jet_mass",
    "muon_id",
    "smear",
]

Beta = tuple[float, float]


@dataclass(frozen=True)
class Detector:
    """Response and efficiencies shared by all samples.

    The CSV entries are per hadron flavour: the probability of the default value -10, the weight
    of the first Beta distribution, and the two Beta distributions' parameters.
    """

    light_response: float = 0.98
    resolution_stochastic: float = 1.0
    resolution_constant: float = 0.06
    jet_id_central: float = 0.90
    electron_tight: float = 0.39
    muon_tight: float = 0.40
    csv_light: tuple[float, float, Beta, Beta] = (0.25, 0.86, (1.2, 6.0), (2.0, 2.5))
    csv_c: tuple[float, float, Beta, Beta] = (0.12, 0.50, (1.5, 3.0), (3.0, 2.0))
    csv_b: tuple[float, float, Beta, Beta] = (0.03, 0.90, (5.0, 1.4), (2.0, 2.0))


DETECTOR = Detector()


def smear(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    flavour: np.ndarray,
    rng: np.random.Generator,
    b_response: float,
    det: Detector = DETECTOR,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reconstructed ``pt, eta, phi`` of jets from parton ``pt, eta, phi`` (any array shape)."""
    mean = np.where(flavour == 5, b_response, det.light_response)
    sigma = np.sqrt(det.resolution_stochastic**2 / np.maximum(pt, 1.0) + det.resolution_constant**2)
    pt = pt * np.maximum(mean + sigma * rng.standard_normal(pt.shape), 0.05)
    eta = eta + 0.02 * rng.standard_normal(pt.shape)
    phi = np.mod(phi + 0.02 * rng.standard_normal(pt.shape) + np.pi, 2.0 * np.pi) - np.pi
    return pt, eta, phi


def jet_mass(pt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Jet masses: a fraction of pT with mean 0.16 (the real files' mass/pT is 0.08-0.25)."""
    return pt * (0.04 + rng.gamma(3.0, 0.04, pt.shape))


def btag_csv(
    flavour: np.ndarray,
    pt: np.ndarray,
    rng: np.random.Generator,
    b_power: float = 1.0,
    det: Detector = DETECTOR,
    b_lost: float = 0.0,
) -> np.ndarray:
    """``Jet_btagCSVV2`` scores for jets of the given hadron flavours (5, 4 or 0) and pT.

    ``b_power`` and ``b_lost`` model b fragmentation: the score of b jets is raised to the power
    ``b_power`` (above 1 moves b jets away from 1 and lowers the tag rate at tight thresholds), and
    a further fraction ``b_lost`` of b jets has no usable tracks (score -10). The core of the light
    distribution moves up for soft jets (``s = exp(-(pT - 15 GeV)/20 GeV)``: Beta(a + 1.3 s, b + 2 s)),
    so loose working points mistag soft light jets more often.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> s = btag_csv(np.repeat([0, 5], 20000), np.full(40000, 60.0), rng)
        >>> [round(float(np.mean(s[i * 20000 : (i + 1) * 20000] > 0.5)), 2) for i in (0, 1)]
        [0.06, 0.87]
    """
    out = np.empty(flavour.shape)
    for flav, (p_default, w1, (a1, b1), beta2) in (
        (0, det.csv_light),
        (4, det.csv_c),
        (5, det.csv_b),
    ):
        sel = flavour == flav if flav else (flavour != 4) & (flavour != 5)
        n = int(sel.sum())
        if flav == 0:
            soft = np.exp(-(np.maximum(pt[sel], 15.0) - 15.0) / 20.0)
            a1, b1 = a1 + 1.3 * soft, b1 + 2.0 * soft
        score = np.where(rng.random(n) < w1, rng.beta(a1, b1, n), rng.beta(*beta2, n))
        if flav == 5 and b_power != 1.0:
            score = score**b_power
        if flav == 5:
            p_default = p_default + (1.0 - p_default) * b_lost
        out[sel] = np.where(rng.random(n) < p_default, -10.0, score)
    return out


def jet_id(
    eta: np.ndarray, lepton_jet: np.ndarray, rng: np.random.Generator, det: Detector = DETECTOR
) -> np.ndarray:
    """NanoAOD ``Jet_jetId``: 6 (tight, lepton veto), 2 (tight only) or 0 (fails)."""
    u = rng.random(eta.shape)
    aeta = np.abs(eta)
    p6 = np.where(aeta < 2.7, det.jet_id_central, np.where(aeta < 3.0, 0.85, 0.80))
    p6 = np.where(lepton_jet, 0.08, p6)
    p2 = np.where(lepton_jet, 0.90, 0.6 * (1.0 - p6))
    return np.where(u < p6, 6, np.where(u < p6 + p2, 2, 0)).astype(np.int32)


def _sip3d(prompt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = prompt.shape
    core = np.abs(rng.normal(0.0, 1.3, n))
    tail = rng.exponential(6.0, n)
    return np.where(prompt & (rng.random(n) > 0.04), core, core + tail)


def _relative_isolation(pt: np.ndarray, activity: float, rng: np.random.Generator) -> np.ndarray:
    """Relative isolation of prompt leptons: hadronic activity in the cone over the lepton pT.

    The activity (GeV, exponential with mean ``activity``) does not grow with the lepton's pT, so
    the isolation requirement costs most at low pT, and more where the parton shower and underlying
    event put more energy around the lepton; 3 % of leptons sit close to a jet.
    """
    near_jet = rng.random(pt.shape) < 0.03
    return rng.exponential(activity, pt.shape) / pt + np.where(
        near_jet, rng.exponential(0.3, pt.shape), 0.0
    )


def electron_id(
    pt: np.ndarray,
    prompt: np.ndarray,
    rng: np.random.Generator,
    det: Detector = DETECTOR,
    activity: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``Electron_cutBased`` (0 fail, 1 veto, 2 loose, 3 medium, 4 tight) and ``Electron_sip3d``.

    The working point is the tighter of identification and isolation; the isolation cone of
    electrons (0.3) holds 0.56 of the activity of the muons' (0.4), and the working points cut the
    relative isolation at 0.06 (tight), 0.07, 0.11 and 0.18 (veto).
    """
    n = pt.shape
    u, v = rng.random(n), rng.random(n)
    cuts = [np.where(prompt, a, b) for a, b in ((0.3, 0.55), (0.45, 0.75), (0.65, 0.88))]
    looser = sum((v >= c).astype(np.int32) for c in cuts)  # 0 fail, 1 veto, 2 loose, 3 medium
    ident = np.where(u < np.where(prompt, det.electron_tight, 0.08), 4, looser)
    iso = _relative_isolation(pt, 0.56 * activity, rng)
    iso_level = 4 - np.searchsorted(np.array([0.06, 0.07, 0.11, 0.18]), iso)
    cut_based = np.where(prompt, np.minimum(ident, iso_level), ident)
    return cut_based.astype(np.int32), _sip3d(prompt, rng)


def muon_id(
    pt: np.ndarray,
    prompt: np.ndarray,
    rng: np.random.Generator,
    det: Detector = DETECTOR,
    activity: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Muon_tightId``, ``Muon_pfRelIso04_all`` and ``Muon_sip3d``."""
    n = pt.shape
    tight = rng.random(n) < np.where(prompt, det.muon_tight, 0.70)
    iso = np.where(prompt, _relative_isolation(pt, activity, rng), 0.05 + rng.exponential(0.6, n))
    return tight, iso, _sip3d(prompt, rng)
