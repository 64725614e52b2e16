"""Hard processes of the synthetic dataset: tops and W bosons and their decays, in numpy.

Each generator returns a :class:`Hard` record of parton-level objects for ``n`` events: quark
(and hadronic tau) jets, prompt charged leptons, and the transverse momentum of the neutrinos. The
objects sit in fixed slots (columns) with a validity mask, so every operation is vectorised over
events. Detector response, extra radiation, pile-up and non-prompt leptons are added by
:mod:`diffana.datasets.synthetic`.

Modelled processes (the AGC samples):

- ``ttbar``: t tbar, each top decaying to W b, W decays inclusive.
- ``single_top_s``: t b, leptonic W from the top (the AGC's s- and t-channel samples are
  ``leptonDecays``).
- ``single_top_t``: t q (forward spectator) with an optional soft b from gluon splitting, leptonic W.
- ``tW``: t W with an optional associated b, inclusive W decays.
- ``wjets``: a leptonic W whose jets all come from radiation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from diffana.datasets.kinematics import P4, from_pt_eta_phi_m, lomax, two_body_decay

__all__ = ["HARD_PROCESSES", "LEPTONIC_MODES", "Hard", "Process", "decay_modes"]

M_TOP, M_W, W_WIDTH = 172.5, 80.4, 2.1
M_E, M_MU = 0.000511, 0.10566

# W decay modes: hadronic (ud-like, cs), e, mu, tau -> e, tau -> mu, tau -> hadrons
HAD_UD, HAD_CS, ELE, MUO, TAU_E, TAU_MU, TAU_H = range(7)
_BR_TAU = 0.1138
_W_INCLUSIVE = np.array(
    [0.338, 0.338, 0.1071, 0.1063, _BR_TAU * 0.1782, _BR_TAU * 0.1739, _BR_TAU * 0.648]
)
_W_LEPTONIC = np.array([0.0, 0.0, 1 / 3, 1 / 3, 0.1782 / 3, 0.1739 / 3, 0.648 / 3])
#: the W decay modes that give a prompt electron or muon (consecutive codes)
LEPTONIC_MODES = (ELE, MUO, TAU_E, TAU_MU)


class Hard(NamedTuple):
    """Parton-level objects of ``n`` events in fixed slots.

    Attributes:
        jets: four-momenta of quarks and hadronic taus, arrays of shape ``(n, slots)``.
        jet_flavour: hadron flavour (5 b, 4 c, 0 light or tau), ``(n, slots)`` int.
        jet_valid: whether the slot holds a parton, ``(n, slots)`` bool.
        leptons: four-momenta of prompt electrons and muons, ``(n, slots)``.
        lepton_pdg: signed PDG id (11 is an electron of charge -1), ``(n, slots)`` int.
        lepton_valid: ``(n, slots)`` bool.
        nu_px, nu_py: summed neutrino transverse momentum, ``(n,)``.
    """

    jets: P4
    jet_flavour: np.ndarray
    jet_valid: np.ndarray
    leptons: P4
    lepton_pdg: np.ndarray
    lepton_valid: np.ndarray
    nu_px: np.ndarray
    nu_py: np.ndarray


def decay_modes(n: int, rng: np.random.Generator, leptonic: tuple[bool, ...]) -> np.ndarray:
    """Draw the decay modes (codes ``HAD_UD`` ... ``TAU_H``) of ``n`` events' W bosons.

    Each entry of ``leptonic`` is one W of the event: ``True`` for a W that decays to leptons only
    (the AGC's ``leptonDecays`` samples), ``False`` for an inclusive decay; the branching ratios
    are the PDG's. Returns an ``(n, len(leptonic))`` array.
    """
    cols = []
    for lep in leptonic:
        probs = _W_LEPTONIC if lep else _W_INCLUSIVE
        cols.append(np.searchsorted(np.cumsum(probs / probs.sum()), rng.random(n), side="right"))
    return np.stack(cols, axis=1)


def _stack(vectors: list[P4]) -> P4:
    return P4(
        *(np.stack([getattr(v, c) for v in vectors], axis=1) for c in ("px", "py", "pz", "e"))
    )


class _WDecay(NamedTuple):
    jets: list[P4]  # two slots: quark 1 (or hadronic tau), quark 2
    flavour: list[np.ndarray]
    valid: list[np.ndarray]
    lepton: P4
    pdg: np.ndarray
    lepton_valid: np.ndarray
    nu_px: np.ndarray
    nu_py: np.ndarray


def _decay_w(w: P4, mode: np.ndarray, charge: np.ndarray, rng: np.random.Generator) -> _WDecay:
    """Decay W bosons of electric charge ``charge`` (+1 or -1) in the given modes."""
    d1, d2 = two_body_decay(w, 0.0, 0.0, rng)
    n = mode.shape[0]
    hadronic = mode <= HAD_CS
    tau_lep = (mode == TAU_E) | (mode == TAU_MU)
    # a tau passes a fraction of its momentum to the visible lepton or hadronic jet
    z = np.where(
        tau_lep, rng.beta(2.0, 3.0, n), np.where(mode == TAU_H, rng.beta(3.0, 1.5, n), 1.0)
    )
    visible = d1.scaled(z)  # the charged lepton, the quark, or the visible tau
    is_e = (mode == ELE) | (mode == TAU_E)
    lepton_valid = ~hadronic & (mode != TAU_H)
    pdg = np.where(is_e, 11, 13) * -charge.astype(np.int64)
    nu_px = np.where(hadronic, 0.0, d2.px + (1.0 - z) * d1.px)
    nu_py = np.where(hadronic, 0.0, d2.py + (1.0 - z) * d1.py)
    flav1 = np.where(mode == HAD_CS, 4, 0)
    return _WDecay(
        jets=[visible, d2],
        flavour=[flav1, np.zeros(n, dtype=np.int64)],
        valid=[hadronic | (mode == TAU_H), hadronic],
        lepton=visible,
        pdg=pdg,
        lepton_valid=lepton_valid,
        nu_px=nu_px,
        nu_py=nu_py,
    )


def _w_mass(n: int, rng: np.random.Generator) -> np.ndarray:
    """Breit-Wigner W masses, truncated to 60-100 GeV."""
    return np.clip(M_W + 0.5 * W_WIDTH * np.tan(np.pi * (rng.random(n) - 0.5)), 60.0, 100.0)


def _decay_top(
    top: P4, charge: np.ndarray, mode: np.ndarray, rng: np.random.Generator
) -> tuple[P4, _WDecay]:
    w, b = two_body_decay(top, _w_mass(mode.shape[0], rng), 0.0, rng)
    return b, _decay_w(w, mode, charge, rng)


def _momentum(pt, y, phi, mass) -> P4:
    """Four-momentum from transverse momentum, rapidity, azimuth and mass."""
    mt = np.sqrt(pt**2 + mass**2)
    return P4(pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y), mt * np.cosh(y))


def _assemble(quarks: list[tuple[P4, np.ndarray, np.ndarray]], decays: list[_WDecay]) -> Hard:
    jets, flav, valid = [], [], []
    for p, f, v in quarks:
        jets.append(p)
        flav.append(f)
        valid.append(v)
    for d in decays:
        jets += d.jets
        flav += d.flavour
        valid += d.valid
    return Hard(
        jets=_stack(jets),
        jet_flavour=np.stack(flav, axis=1),
        jet_valid=np.stack(valid, axis=1),
        leptons=_stack([d.lepton for d in decays]),
        lepton_pdg=np.stack([d.pdg for d in decays], axis=1),
        lepton_valid=np.stack([d.lepton_valid for d in decays], axis=1),
        nu_px=sum(d.nu_px for d in decays),
        nu_py=sum(d.nu_py for d in decays),
    )


def _top_pair(n: int, rng: np.random.Generator, knobs) -> tuple[P4, P4]:
    pt = rng.gamma(knobs.top_pt_shape, knobs.top_pt_mean / knobs.top_pt_shape, n)
    phi = 2.0 * np.pi * rng.random(n)
    t = _momentum(pt, rng.normal(0.0, knobs.top_y_width, n), phi, M_TOP)
    pt2 = pt * np.exp(rng.normal(0.0, 0.3, n))
    phi2 = phi + np.pi + rng.normal(0.0, 0.5, n)
    tbar = _momentum(pt2, rng.normal(0.0, knobs.top_y_width, n), phi2, M_TOP)
    return t, tbar


def _ttbar(n: int, rng: np.random.Generator, knobs, modes: np.ndarray) -> Hard:
    t, tbar = _top_pair(n, rng, knobs)
    ones = np.ones(n, dtype=np.int64)
    b1, w1 = _decay_top(t, ones, modes[:, 0], rng)
    b2, w2 = _decay_top(tbar, -ones, modes[:, 1], rng)
    true = np.ones(n, dtype=bool)
    five = np.full(n, 5)
    return _assemble([(b1, five, true), (b2, five, true)], [w1, w2])


def _single_top(
    n: int, rng: np.random.Generator, knobs, mode: np.ndarray
) -> tuple[P4, np.ndarray, P4, _WDecay]:
    """A single top of random charge (t : tbar = 0.6 : 0.4), its W decaying in ``mode``."""
    charge = np.where(rng.random(n) < 0.6, 1, -1)
    pt = rng.gamma(knobs.top_pt_shape, knobs.top_pt_mean / knobs.top_pt_shape, n)
    phi = 2.0 * np.pi * rng.random(n)
    top = _momentum(pt, rng.normal(0.0, knobs.top_y_width, n), phi, M_TOP)
    b, w = _decay_top(top, charge, mode, rng)
    return top, charge, b, w


def _extra_b(n: int, rng: np.random.Generator, knobs) -> tuple[P4, np.ndarray, np.ndarray]:
    """An associated b quark (gluon splitting) with probability ``knobs.extra_b``."""
    pt = lomax(rng.random(n), 5.0, knobs.extra_b_pt_scale, 2.5)
    eta = rng.normal(0.0, knobs.extra_b_eta_width, n)
    p = from_pt_eta_phi_m(pt, eta, 2.0 * np.pi * rng.random(n), np.full(n, 4.8))
    return p, np.full(n, 5), rng.random(n) < knobs.extra_b


def _single_top_s(n: int, rng: np.random.Generator, knobs, modes: np.ndarray) -> Hard:
    top, _, b, w = _single_top(n, rng, knobs, modes[:, 0])
    pt = rng.gamma(2.5, knobs.recoil_pt_mean / 2.5, n)
    phi = np.arctan2(-top.py, -top.px) + rng.normal(0.0, 0.3, n)
    b2 = from_pt_eta_phi_m(pt, rng.normal(0.0, knobs.extra_b_eta_width, n), phi, np.full(n, 4.8))
    return _assemble(
        [(b, np.full(n, 5), np.ones(n, bool)), (b2, np.full(n, 5), np.ones(n, bool))], [w]
    )


def _single_top_t(n: int, rng: np.random.Generator, knobs, modes: np.ndarray) -> Hard:
    _, _, b, w = _single_top(n, rng, knobs, modes[:, 0])
    pt = lomax(rng.random(n), 10.0, knobs.recoil_pt_mean, 3.0)
    eta = rng.choice([-1.0, 1.0], n) * np.abs(rng.normal(2.4, 1.0, n))
    spectator = from_pt_eta_phi_m(pt, eta, 2.0 * np.pi * rng.random(n), np.zeros(n))
    quarks = [
        (b, np.full(n, 5), np.ones(n, bool)),
        (spectator, np.zeros(n, np.int64), np.ones(n, bool)),
        _extra_b(n, rng, knobs),
    ]
    return _assemble(quarks, [w])


def _tw(n: int, rng: np.random.Generator, knobs, modes: np.ndarray) -> Hard:
    top, charge, b, w_top = _single_top(n, rng, knobs, modes[:, 0])
    pt = top.pt * np.exp(rng.normal(0.0, 0.25, n))
    phi = np.arctan2(-top.py, -top.px) + rng.normal(0.0, 0.4, n)
    w = _momentum(pt, rng.normal(0.0, knobs.top_y_width, n), phi, _w_mass(n, rng))
    w_assoc = _decay_w(w, modes[:, 1], -charge, rng)
    return _assemble(
        [(b, np.full(n, 5), np.ones(n, bool)), _extra_b(n, rng, knobs)], [w_top, w_assoc]
    )


def _wjets(n: int, rng: np.random.Generator, knobs, modes: np.ndarray) -> Hard:
    pt = rng.gamma(2.0, knobs.recoil_pt_mean / 2.0, n)
    w = _momentum(pt, rng.normal(0.0, 1.6, n), 2.0 * np.pi * rng.random(n), _w_mass(n, rng))
    charge = np.where(rng.random(n) < 0.58, 1, -1)
    return _assemble([], [_decay_w(w, modes[:, 0], charge, rng)])


class Process(NamedTuple):
    """A hard-process generator.

    Attributes:
        generate: ``(n, rng, physics, modes) -> Hard`` for W decay modes from :func:`decay_modes`.
        w_leptonic: per W of the event, whether it decays to leptons only (``leptonDecays``).
        max_jets: the most jets the partons and prompt leptons can make (before radiation).
    """

    generate: Callable[..., Hard]
    w_leptonic: tuple[bool, ...]
    max_jets: int


#: generator name -> process; the single-top s and t samples and W+jets decay leptonically
HARD_PROCESSES = {
    "ttbar": Process(_ttbar, (False, False), 6),
    "single_top_s": Process(_single_top_s, (True,), 3),
    "single_top_t": Process(_single_top_t, (True,), 4),
    "tW": Process(_tw, (False, False), 6),
    "wjets": Process(_wjets, (True,), 1),
}
