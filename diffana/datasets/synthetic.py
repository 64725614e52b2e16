"""Synthetic NanoAOD-like events of one sample, as flat numpy columns, with a loose preselection.

:func:`simulate` draws ``n`` events of a sample (the hard process of
:mod:`diffana.datasets.processes`, extra radiation, pile-up jets, non-prompt leptons and the
detector response of :mod:`diffana.datasets.detector`) and keeps those that pass the
**preselection**, like a skim: at least one electron or muon with ``pT > 20 GeV`` and
``|eta| < 2.5`` (any identification), and at least four jets with ``pT > 20 GeV`` and
``|eta| < 2.5`` (any jet ID, the jet of a lepton included). ``n`` is the number of generated events,
before the preselection, so that ``xsec * lumi / n`` is the right event weight.

Jets and leptons that nothing depends on are drawn independently: for them the number per event
passing the preselection's object requirements is drawn first (a binomial thinning of the total),
and their momenta only for the events that pass, from the spectra truncated to the pass or fail
region. The written events are thus an exact preselection of all ``n`` generated ones, at a cost
that grows with the number of written events rather than generated ones.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from diffana.datasets import detector
from diffana.datasets.kinematics import pt_eta_phi_m
from diffana.datasets.processes import (
    HARD_PROCESSES,
    LEPTONIC_MODES,
    M_E,
    M_MU,
    Hard,
    decay_modes,
)
from diffana.datasets.samples import Physics
from diffana.datasets.sources import (
    ETA_CUT,
    JET_ETA_MAX,
    JET_PT_MIN,
    PT_CUT,
    FlatObjects,
    count_jets,
    count_nonprompt,
    draw_jets,
    draw_nonprompt,
)

__all__ = ["PRESELECTION", "simulate"]

#: the preselection of written events, as (object, pT threshold in GeV, |eta| bound, minimum count)
PRESELECTION = (("lepton", PT_CUT, ETA_CUT, 1), ("jet", PT_CUT, ETA_CUT, 4))
_ELE_ETA, _MU_ETA, _ELE_PT_MIN, _MU_PT_MIN = 2.5, 2.4, 5.0, 3.0
_LEPTON_RECO_EFF = 0.97
_LEPTON_JET = -1  # the code of the jet a prompt lepton makes


class _Objects(NamedTuple):
    """Fixed-slot object arrays of the events that passed so far."""

    jet_pt: np.ndarray
    jet_eta: np.ndarray
    jet_phi: np.ndarray
    jet_flavour: np.ndarray
    jet_valid: np.ndarray
    lep_pt: np.ndarray
    lep_eta: np.ndarray
    lep_phi: np.ndarray
    lep_pdg: np.ndarray
    lep_valid: np.ndarray
    nu_px: np.ndarray
    nu_py: np.ndarray


def _final_state_radiation(pt, eta, phi, flavour, valid, prob: float, rng: np.random.Generator):
    """Let each parton radiate, with probability ``prob``, a gluon jet at ``0.4 < ΔR < 1.2``.

    The gluon takes a fraction ``z ~ Beta(1.2, 3.5)`` (mean 0.26) of the parton's pT, which
    broadens and lowers the reconstructed top mass and adds jets, as a parton shower does.
    """
    shape = pt.shape
    emits = valid & (rng.random(shape) < prob)
    z = np.where(emits, rng.beta(1.2, 3.5, shape), 0.0)
    dr, angle = rng.uniform(0.4, 1.2, shape), rng.uniform(0.0, 2.0 * np.pi, shape)
    return (
        np.concatenate([pt * (1.0 - z), pt * z], axis=1),
        np.concatenate([eta, eta + dr * np.cos(angle)], axis=1),
        np.concatenate(
            [phi, np.mod(phi + dr * np.sin(angle) + np.pi, 2.0 * np.pi) - np.pi], axis=1
        ),
        np.concatenate([flavour, np.zeros_like(flavour)], axis=1),
        np.concatenate([valid, emits], axis=1),
    )


def _reconstruct(hard: Hard, physics: Physics, rng: np.random.Generator) -> _Objects:
    """Parton jets after response, prompt leptons within acceptance, and the jets of leptons."""
    pt, eta, phi, _ = pt_eta_phi_m(hard.jets)
    pt, eta, phi, flavour, valid = _final_state_radiation(
        pt, eta, phi, hard.jet_flavour, hard.jet_valid, physics.fsr, rng
    )
    pt, eta, phi = detector.smear(pt, eta, phi, flavour, rng, physics.b_response, physics.detector)
    jet_valid = valid & (pt > JET_PT_MIN) & (np.abs(eta) < JET_ETA_MAX)
    lpt, leta, lphi, _ = pt_eta_phi_m(hard.leptons)
    is_e = np.abs(hard.lepton_pdg) == 11
    accepted = np.where(
        is_e,
        (np.abs(leta) < _ELE_ETA) & (lpt > _ELE_PT_MIN),
        (np.abs(leta) < _MU_ETA) & (lpt > _MU_PT_MIN),
    )
    lep_valid = hard.lepton_valid & accepted & (rng.random(lpt.shape) < _LEPTON_RECO_EFF)
    # every prompt lepton is also clustered into a jet, a little harder than the lepton
    lj_pt = lpt * (1.0 + rng.exponential(0.05, lpt.shape))
    lj_valid = hard.lepton_valid & (lj_pt > JET_PT_MIN) & (np.abs(leta) < JET_ETA_MAX)
    flavour = np.concatenate([flavour, np.full(lpt.shape, _LEPTON_JET)], axis=1)
    return _Objects(
        np.concatenate([pt, lj_pt], axis=1),
        np.concatenate([eta, leta], axis=1),
        np.concatenate([phi, lphi], axis=1),
        flavour,
        np.concatenate([jet_valid, lj_valid], axis=1),
        lpt,
        leta,
        lphi,
        hard.lepton_pdg,
        lep_valid,
        hard.nu_px,
        hard.nu_py,
    )


def _n_passing(pt: np.ndarray, eta: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.count_nonzero(valid & (pt > PT_CUT) & (np.abs(eta) < ETA_CUT), axis=1)


def _flat(pt, eta, phi, code, valid) -> FlatObjects:
    """Fixed-slot objects as flat ones."""
    return FlatObjects(np.nonzero(valid)[0], pt[valid], eta[valid], phi[valid], code[valid])


def _ordered(parts: list[FlatObjects], n_events: int, *extra: np.ndarray):
    """Concatenate flat objects, order them by event and decreasing pT; count them per event."""
    flat = FlatObjects(*(np.concatenate(field) for field in zip(*parts, strict=True)))
    order = np.lexsort((-flat.pt, flat.event))
    counts = np.bincount(flat.event, minlength=n_events).astype(np.uint32)
    return counts, FlatObjects(*(f[order] for f in flat)), [e[order] for e in extra]


def simulate(
    physics: Physics, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Generate ``n`` events and return the preselected ones.

    Returns:
        The indices (in ``[0, n)``) of the written events, and their NanoAOD columns: event-level
        branches and, per collection, the counts (``nJet``) and the flat content (``Jet_pt``).

    Examples:
        >>> from diffana.datasets.samples import SAMPLES
        >>> idx, cols = simulate(SAMPLES["ttbar__nominal"].physics, 2000, np.random.default_rng(7))
        >>> int(cols["nJet"].sum()) == len(cols["Jet_pt"]) and bool(np.all(cols["nJet"] >= 4))
        True
    """
    process = HARD_PROCESSES[physics.generator]
    max_hard_jets = process.max_jets * (2 if physics.fsr > 0 else 1)  # a gluon per parton
    jet_counts = [count_jets(src, n, rng) for src in physics.jet_sources]
    nonprompt = count_nonprompt(physics.nonprompt_rate, n, rng)
    modes = decay_modes(n, rng, process.w_leptonic)
    # events that cannot pass whatever their kinematics are dropped before they are drawn:
    # too few jets, or neither a leptonic W nor a non-prompt lepton above threshold
    n_iid = sum(c.passing for c in jet_counts)
    has_lepton = np.isin(modes, LEPTONIC_MODES).any(axis=1) | (nonprompt.passing > 0)
    index = np.flatnonzero(has_lepton & (n_iid + max_hard_jets >= 4))

    obj = _reconstruct(process.generate(index.size, rng, physics, modes[index]), physics, rng)
    n_lep = _n_passing(obj.lep_pt, obj.lep_eta, obj.lep_valid) + nonprompt.passing[index]
    n_jet = _n_passing(obj.jet_pt, obj.jet_eta, obj.jet_valid) + n_iid[index]
    keep = (n_lep >= 1) & (n_jet >= 4)
    obj = _Objects(*(x[keep] for x in obj))
    index = index[keep]
    counts = [c.take(index) for c in jet_counts]
    return index, _columns(obj, physics, counts, nonprompt.take(index), rng)


def _columns(obj: _Objects, physics: Physics, jet_counts, nonprompt, rng) -> dict:
    k = obj.jet_pt.shape[0]
    det = physics.detector
    jets = [_flat(obj.jet_pt, obj.jet_eta, obj.jet_phi, obj.jet_flavour, obj.jet_valid)]
    jets += [draw_jets(src, c, rng) for src, c in zip(physics.jet_sources, jet_counts, strict=True)]
    n_jet, jet, _ = _ordered(jets, k)
    lepton_jet = jet.code == _LEPTON_JET
    flavour = np.maximum(jet.code, 0)
    cols: dict[str, np.ndarray] = {
        "nJet": n_jet,
        "Jet_pt": jet.pt,
        "Jet_eta": jet.eta,
        "Jet_phi": jet.phi,
        "Jet_mass": detector.jet_mass(jet.pt, rng),
        "Jet_btagCSVV2": detector.btag_csv(
            flavour, jet.pt, rng, physics.btag_b_power, det, physics.btag_b_lost
        ),
        "Jet_jetId": detector.jet_id(jet.eta, lepton_jet, rng, det),
        "Jet_hadronFlavour": flavour.astype(np.int32),
    }

    prompt = _flat(obj.lep_pt, obj.lep_eta, obj.lep_phi, obj.lep_pdg, obj.lep_valid)
    fake = draw_nonprompt(nonprompt, rng)
    for name, code, mass in (("Electron", 11, M_E), ("Muon", 13, M_MU)):
        mine = [FlatObjects(*(f[np.abs(p.code) == code] for f in p)) for p in (prompt, fake)]
        flags = np.concatenate([np.ones(mine[0].pt.size, bool), np.zeros(mine[1].pt.size, bool)])
        counts, lep, (flag,) = _ordered(mine, k, flags)
        cols[f"n{name}"] = counts
        cols[f"{name}_pt"] = lep.pt
        cols[f"{name}_eta"] = lep.eta
        cols[f"{name}_phi"] = lep.phi
        cols[f"{name}_mass"] = np.full(lep.pt.shape, mass)
        cols[f"{name}_charge"] = (-np.sign(lep.code)).astype(np.int32)
        if code == 11:
            cut_based, sip = detector.electron_id(lep.pt, flag, rng, det, physics.activity)
            cols["Electron_cutBased"], cols["Electron_sip3d"] = cut_based, sip
        else:
            tight, iso, sip = detector.muon_id(lep.pt, flag, rng, det, physics.activity)
            cols["Muon_tightId"], cols["Muon_pfRelIso04_all"], cols["Muon_sip3d"] = tight, iso, sip

    met_x = obj.nu_px + rng.normal(0.0, 12.0, k)
    met_y = obj.nu_py + rng.normal(0.0, 12.0, k)
    cols["MET_pt"] = np.hypot(met_x, met_y)
    cols["MET_phi"] = np.arctan2(met_y, met_x)
    cols["PV_npvs"] = (1 + rng.poisson(11.0, k)).astype(np.int32)
    # the primary vertex in cm: the beam spot's position and length
    cols["PV_x"] = rng.normal(0.08, 0.002, k)
    cols["PV_y"] = rng.normal(0.09, 0.002, k)
    cols["PV_z"] = rng.normal(0.0, 3.5, k)
    return cols
