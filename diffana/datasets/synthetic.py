"""Synthetic NanoAOD-like events of one sample, as flat numpy columns, with a loose preselection.

:func:`simulate` draws ``n`` events of a sample (the hard process of
:mod:`diffana.datasets.processes`, extra radiation, pile-up jets, non-prompt leptons and the
detector response of :mod:`diffana.datasets.detector`) and keeps those that pass the
**preselection**, like a skim: at least one electron or muon with ``pT > 20 GeV`` and
``|eta| < 2.5`` (any identification), and at least four jets with ``pT > 20 GeV`` and
``|eta| < 2.5`` (any jet ID, the jet of a lepton included). ``n`` is the number of generated events,
before the preselection, so that ``xsec * lumi / n`` is the right event weight.

Events are dropped as early as the preselection allows: the objects drawn independently of the
hard process are counted first (:mod:`diffana.datasets.sources`), events that cannot reach four
jets or have no lepton candidate are dropped before their hard process is drawn, and the momenta of
those objects are drawn only for the events kept. The written events are an exact preselection of
all ``n`` generated ones, at a cost that grows with the written events more than the generated.
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
    complete_jets,
    complete_nonprompt,
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


class _Reco(NamedTuple):
    """Objects of the hard process after reconstruction, flat, for ``n_events`` events."""

    jets: FlatObjects  # quark, gluon and hadronic-tau jets, and the jets of prompt leptons
    leptons: FlatObjects  # prompt electrons and muons within acceptance (code: signed PDG id)
    nu_px: np.ndarray
    nu_py: np.ndarray


def _flat(p4, code: np.ndarray, valid: np.ndarray) -> FlatObjects:
    """Fixed-slot four-vectors as flat objects (valid slots only)."""
    pt, eta, phi, _ = pt_eta_phi_m(p4[valid])
    return FlatObjects(np.nonzero(valid)[0], pt, eta, phi, code[valid])


def _take(flat: FlatObjects, keep: np.ndarray) -> FlatObjects:
    """The objects of the events kept, renumbered."""
    new_index = np.cumsum(keep) - 1
    sel = keep[flat.event]
    return FlatObjects(new_index[flat.event[sel]], *(f[sel] for f in flat[1:]))


def _concat(parts) -> FlatObjects:
    return FlatObjects(*(np.concatenate(field) for field in zip(*parts, strict=True)))


def _final_state_radiation(partons: FlatObjects, prob: float, rng: np.random.Generator):
    """Let each parton radiate, with probability ``prob``, a gluon jet at ``0.4 < ΔR < 1.2``.

    The gluon takes a fraction ``z ~ Beta(1.2, 3.5)`` (mean 0.26) of the parton's pT, which
    broadens and lowers the reconstructed top mass and adds jets, as a parton shower does.
    """
    emits = np.flatnonzero(rng.random(partons.pt.size) < prob)
    z = rng.beta(1.2, 3.5, emits.size)
    dr, angle = rng.uniform(0.4, 1.2, emits.size), rng.uniform(0.0, 2.0 * np.pi, emits.size)
    pt = partons.pt.copy()
    pt[emits] *= 1.0 - z
    phi = np.mod(partons.phi[emits] + dr * np.sin(angle) + np.pi, 2.0 * np.pi) - np.pi
    gluons = FlatObjects(
        partons.event[emits],
        partons.pt[emits] * z,
        partons.eta[emits] + dr * np.cos(angle),
        phi,
        np.zeros(emits.size, dtype=partons.code.dtype),
    )
    return _concat([partons._replace(pt=pt), gluons])


def _reconstruct(hard: Hard, physics: Physics, rng: np.random.Generator) -> _Reco:
    """Parton jets after response, prompt leptons within acceptance, and the jets of leptons."""
    partons = _final_state_radiation(
        _flat(hard.jets, hard.jet_flavour, hard.jet_valid), physics.fsr, rng
    )
    pt, eta, phi = detector.smear(
        partons.pt,
        partons.eta,
        partons.phi,
        partons.code,
        rng,
        physics.b_response,
        physics.detector,
    )
    jets = FlatObjects(partons.event, pt, eta, phi, partons.code)
    lep = _flat(hard.leptons, hard.lepton_pdg, hard.lepton_valid)
    is_e = np.abs(lep.code) == 11
    accepted = np.where(
        is_e,
        (np.abs(lep.eta) < _ELE_ETA) & (lep.pt > _ELE_PT_MIN),
        (np.abs(lep.eta) < _MU_ETA) & (lep.pt > _MU_PT_MIN),
    )
    reconstructed = accepted & (rng.random(lep.pt.size) < _LEPTON_RECO_EFF)
    # every prompt lepton is also clustered into a jet, a little harder than the lepton
    lepton_jets = lep._replace(
        pt=lep.pt * (1.0 + rng.exponential(0.05, lep.pt.size)),
        code=np.full(lep.pt.size, _LEPTON_JET, dtype=jets.code.dtype),
    )
    jets = _concat([jets, lepton_jets])
    stored = (jets.pt > JET_PT_MIN) & (np.abs(jets.eta) < JET_ETA_MAX)
    return _Reco(
        FlatObjects(*(f[stored] for f in jets)),
        FlatObjects(*(f[reconstructed] for f in lep)),
        hard.nu_px,
        hard.nu_py,
    )


def _n_passing(flat: FlatObjects, n_events: int) -> np.ndarray:
    passing = (flat.pt > PT_CUT) & (np.abs(flat.eta) < ETA_CUT)
    return np.bincount(flat.event[passing], minlength=n_events)


def _ordered(parts: list[FlatObjects], n_events: int, *extra: np.ndarray):
    """Concatenate flat objects, order them by event and decreasing pT; count them per event."""
    flat = _concat(parts)
    order = np.argsort(flat.event + 1.0 / (2.0 + flat.pt))  # by event, then by decreasing pT
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
    passing = [count_jets(src, n, rng) for src in physics.jet_sources]
    n_iid = sum(passing)
    nonprompt = count_nonprompt(physics.nonprompt_rate, n, rng)
    # events that cannot pass whatever their kinematics are dropped before they are drawn:
    # too few jets, or neither a leptonic W nor a non-prompt lepton above threshold
    index = np.flatnonzero(n_iid + max_hard_jets >= 4)
    modes = decay_modes(index.size, rng, process.w_leptonic)
    leptonic = ((modes >= LEPTONIC_MODES[0]) & (modes <= LEPTONIC_MODES[-1])).any(axis=1)
    has_lepton = leptonic | (nonprompt[index] > 0)
    index, modes = index[has_lepton], modes[has_lepton]

    reco = _reconstruct(process.generate(index.size, rng, physics, modes), physics, rng)
    n_lep = _n_passing(reco.leptons, index.size) + nonprompt[index]
    n_jet = _n_passing(reco.jets, index.size) + n_iid[index]
    keep = (n_lep >= 1) & (n_jet >= 4)
    reco = _Reco(
        _take(reco.jets, keep), _take(reco.leptons, keep), reco.nu_px[keep], reco.nu_py[keep]
    )
    index = index[keep]
    counts = [
        complete_jets(s, p[index], rng) for s, p in zip(physics.jet_sources, passing, strict=True)
    ]
    fakes = complete_nonprompt(physics.nonprompt_rate, nonprompt[index], rng)
    return index, _columns(reco, physics, counts, fakes, rng)


def _columns(reco: _Reco, physics: Physics, jet_counts, nonprompt, rng) -> dict:
    k = reco.nu_px.size
    det = physics.detector
    jets = [reco.jets]
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

    prompt = reco.leptons
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

    met_x = reco.nu_px + rng.normal(0.0, 12.0, k)
    met_y = reco.nu_py + rng.normal(0.0, 12.0, k)
    cols["MET_pt"] = np.hypot(met_x, met_y)
    cols["MET_phi"] = np.arctan2(met_y, met_x)
    cols["PV_npvs"] = (1 + rng.poisson(11.0, k)).astype(np.int32)
    # the primary vertex in cm: the beam spot's position and length
    cols["PV_x"] = rng.normal(0.08, 0.002, k)
    cols["PV_y"] = rng.normal(0.09, 0.002, k)
    cols["PV_z"] = rng.normal(0.0, 3.5, k)
    return cols
