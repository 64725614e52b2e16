"""Phase 1 of the AGC ttbar processor: objects, jet-pT variations and dense padded columns.

Everything here runs inside a skim (awkward operations only, typetracer-safe), except
:func:`trijet_columns`, which runs in :meth:`~diffana.processors.base.Processor.prepare`.

**Objects** (AGC analysis version 2). Requirements that are not parameters are applied exactly:

* electron: ``|eta| < 2.1``, ``cutBased == 4``, ``sip3d < 4``;
* muon: ``|eta| < 2.1``, ``tightId``, ``sip3d < 4``, ``pfRelIso04_all < 0.15``;
* jet: ``|eta| < eta_max`` and ``isTightLeptonVeto`` (``jetId`` bit 2; ``jetId == 6`` in practice).

The pT thresholds and the b-tag threshold are parameters, so the skim keeps objects down to the
lower bounds of those parameters (``pt > low``) and drops only events that no parameter value within
the bounds can select (:func:`preselect`).

**Jet-pT variations** as the AGC makes them: ``pt_scale_up`` is ``pt * 1.03``, ``pt_res_up`` is
``pt * (1 + 0.05 z)`` with ``z`` a standard normal number per jet, computed in float64 (as the
AGC's arithmetic does) and stored as float32 like the nominal pT, so that every block has the same
column types (one compiled kernel for all of them). The AGC draws ``z`` at random; here it is deterministic
(:func:`jet_pt_resolution`): a splitmix64 hash of ``(run, luminosityBlock, event, jet index)``
turned into two uniform numbers and one Box-Muller normal, so every run, chunking and executor
smears every jet identically.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import awkward as ak
import jax
import jax.numpy as jnp
import numpy as np

from diffana.pipeline.blocks import bucket_size
from diffana.pipeline.observables import trijet_candidates, trijet_indices

__all__ = [
    "JER_WIDTH",
    "JES_UP",
    "jet_pt_resolution",
    "jet_pt_variations",
    "pad_objects",
    "preselect",
    "selected_lepton_pt",
    "splitmix64",
    "trijet_columns",
]

JES_UP = 1.03
"""Jet energy scale variation: jet pT * 1.03 (``pt_scale_up``)."""
JER_WIDTH = 0.05
"""Jet energy resolution variation: jet pT * N(1, 0.05) (``pt_res_up``)."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: Any) -> Any:
    """The splitmix64 finaliser of ``x + 0x9E3779B97F4A7C15`` (uint64, wrapping), element-wise.

    Works on NumPy and awkward ``uint64`` arrays (jagged or typetracer).

    Examples:
        >>> hex(int(splitmix64(np.array([0], np.uint64))[0]))
        '0xe220a8397b1dcdaf'
    """
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _uniform(bits: Any) -> Any:
    """A uniform number in (0, 1) from the top 53 bits: ``((bits >> 11) + 0.5) / 2**53``."""
    return (ak.values_astype(bits >> np.uint64(11), np.float64) + 0.5) * 2.0**-53


def jet_pt_resolution(events: Any) -> Any:
    """Deterministic ``N(1, 0.05)`` factors for every jet of ``events`` (float64, jagged).

    With ``s = splitmix64(splitmix64(splitmix64(run) ^ luminosityBlock) ^ event)`` per event and
    ``i`` the jet's index in the event, ``u1, u2 = uniform(splitmix64(s + 2i)),
    uniform(splitmix64(s + 2i + 1))`` and the factor is
    ``1 + 0.05 * sqrt(-2 ln u1) * cos(2 pi u2)`` (all integers uint64, wrapping).
    """

    def u64(x: Any) -> Any:
        return ak.values_astype(x, np.uint64)

    seed = splitmix64(
        splitmix64(splitmix64(u64(events.run)) ^ u64(events.luminosityBlock)) ^ u64(events.event)
    )
    index = u64(ak.local_index(events.Jet.pt, axis=1)) * np.uint64(2)
    u1 = _uniform(splitmix64(seed + index))
    u2 = _uniform(splitmix64(seed + index + np.uint64(1)))
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return 1.0 + JER_WIDTH * z


def jet_pt_variations(events: Any, *, variations: bool) -> dict[str, Any]:
    """Jet pT per systematic (float32): ``nominal``, and with ``variations`` the AGC's
    ``pt_scale_up`` and ``pt_res_up`` (computed in float64, rounded to float32)."""
    pt = events.Jet.pt
    out = {"nominal": ak.values_astype(pt, np.float32)}
    if variations:
        pt64 = ak.values_astype(pt, np.float64)
        out["pt_scale_up"] = ak.values_astype(pt64 * JES_UP, np.float32)
        out["pt_res_up"] = ak.values_astype(pt64 * jet_pt_resolution(events), np.float32)
    return out


def selected_lepton_pt(events: Any, pt_min: float) -> Any:
    """pT of the identified electrons and muons above ``pt_min``, merged and sorted (descending)."""
    ele, mu = events.Electron, events.Muon
    ele_ok = (np.abs(ele.eta) < 2.1) & (ele.cutBased == 4) & (ele.sip3d < 4) & (ele.pt > pt_min)
    mu_ok = (
        (np.abs(mu.eta) < 2.1)
        & mu.tightId
        & (mu.sip3d < 4)
        & (mu.pfRelIso04_all < 0.15)
        & (mu.pt > pt_min)
    )
    merged = ak.concatenate([ele.pt[ele_ok], mu.pt[mu_ok]], axis=1)
    return ak.sort(merged, axis=1, ascending=False)


def pad_objects(array: Any, width: int, dtype: Any) -> Any:
    """``[events, width]`` of ``dtype`` from a jagged array: the first ``width`` objects, then zeros."""
    return ak.fill_none(ak.pad_none(array, width, axis=1, clip=True), np.dtype(dtype).type(0))


def preselect(
    lep_pt: Any,
    jet_loose: Any,
    jet_btag: Any,
    *,
    lepton_pt_max: float,
    btag_min: float,
) -> Any:
    """Events that some parameter value within the bounds can select.

    ``lep_pt`` holds the sorted leptons above the lower lepton-pT bound, ``jet_loose`` flags the
    jets above the lower jet-pT bound. An event is kept if it has a lepton, no second lepton above
    the upper lepton-pT bound (``exactly one lepton`` then fails for every threshold), at least four
    loose jets and a loose jet with b-tag score at least the lower b-tag bound.
    """
    second = ak.fill_none(ak.pad_none(lep_pt, 2, axis=1, clip=True), 0.0)[:, 1]
    return (
        (ak.num(lep_pt, axis=1) >= 1)
        & (second <= lepton_pt_max)
        & (ak.sum(jet_loose, axis=1) >= 4)
        & ak.any(jet_loose & (jet_btag >= btag_min), axis=1)
    )


_TRIJETS = jax.jit(trijet_candidates)


@functools.partial(jax.jit, static_argnums=4)
def _choice_table(mass: Any, order: Any, btag: Any, real: Any, width: int) -> Any:
    """``[events, width - 3, width - 1]``: mass of the chosen trijet for ``n = 4 .. width`` selected
    jets and ``k = 2 .. width`` b-tagged jets (see :func:`trijet_columns`)."""
    combos = trijet_indices(width)
    score = jnp.where(real, btag, -jnp.inf)
    rank = jnp.sum(score[:, None, :] > score[:, :, None], axis=-1)  # jets with a higher score
    min_rank = jnp.min(rank[:, combos], axis=-1)  # [events, C]
    max_index = jnp.asarray(combos.max(axis=1))  # [C]
    n = jnp.arange(4, width + 1)[None, :, None]
    k = jnp.arange(2, width + 1)[None, None, :]

    def visit(p: Any, table: Any) -> Any:  # lowest pT first: the highest valid trijet wins
        c = order[:, order.shape[1] - 1 - p]
        valid = (n > max_index[c][:, None, None]) & (
            k > jnp.take_along_axis(min_rank, c[:, None], 1)[:, :, None]
        )
        m = jnp.take_along_axis(mass, c[:, None], 1)[:, :, None]
        return jnp.where(valid, m, table)

    table = jnp.zeros((mass.shape[0], width - 3, width - 1), mass.dtype)
    return jax.lax.fori_loop(0, order.shape[1], visit, table)


def trijet_columns(columns: Mapping[str, np.ndarray], *, table: bool) -> dict[str, np.ndarray]:
    """The 4j2b trijet columns of a block, from the jets' kinematics (float64, stored float32).

    Trijets are the :func:`diffana.pipeline.trijet_candidates` (``ak.combinations(jets, 3)`` order;
    those with a padding jet are never valid). With ``table``, the jets are sorted by pT and the
    selection is a pT threshold, so the selected jets are the first ``n`` and the b-tagged ones those
    whose score is among the ``k`` highest: the AGC's choice (the highest-pT trijet of selected jets
    with a b-tagged jet) depends on ``(n, k)`` only and is tabulated once,
    ``trijet_table[e, n - 4, k - 2]`` (``n = 4 .. J``, ``k = 2 .. J``; 0 without a valid trijet),
    so a step looks one mass up instead of scanning ``C(J, 3)`` trijets. Without ``table``:
    ``trijet_mass`` and ``trijet_order`` (the trijets in decreasing pT) for
    :func:`diffana.pipeline.best_trijet_mass`. The event axis is padded to a bucket size, so the
    compiled functions see a few shapes.
    """
    names = ("jet_pt", "jet_eta", "jet_phi", "jet_mass")
    n = np.shape(columns["jet_pt"])[0]
    size = bucket_size(n)

    def padded(name: str, fill: float = 0.0) -> np.ndarray:
        a = np.asarray(columns[name], np.float64)
        return np.concatenate([a, np.full((size - n, *a.shape[1:]), fill)])

    trijets = _TRIJETS(*(padded(k) for k in names))
    if table:
        btag, real = padded("jet_btag"), padded("jet_pt") > 0
        mass = _choice_table(trijets.mass, trijets.order, btag, real, btag.shape[1])
        return {"trijet_table": np.asarray(mass, np.float32)[:n]}
    order = np.asarray(trijets.order)[:n]
    return {
        "trijet_mass": np.asarray(trijets.mass, np.float32)[:n],
        "trijet_order": order.astype(np.int8 if order.shape[-1] <= 127 else np.int16),
    }
