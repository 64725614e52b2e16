"""Observables over soft-selected objects: scalar sums (H_T) and the choice of a trijet.

**Scalar sum.** ``scalar_sum(pt, w) = sum_j w_j pt_j`` is the expected H_T when jet ``j`` is selected
with probability ``w_j``; with 0/1 weights it is the hard H_T. It is linear in the weights, so it
needs no hardness of its own.

**A discrete choice** such as the AGC's "trijet with the largest vector-sum pT among trijets with at
least one b-tagged jet" has two soft forms. The trijets' pT and masses do not depend on the cut
parameters, only which trijets are *valid* does, so the pT order is fixed and the choice is "the
first valid trijet in decreasing pT":

* *soft choice* (:func:`best_trijet_mass` with a finite hardness): trijet ``c`` is valid with
  probability ``v_c = w_a w_b w_c (1 - (1 - b_a)(1 - b_b)(1 - b_c))`` (all three jets selected, at
  least one b-tagged) and is the first valid one with probability
  ``pi_c = v_c prod_{c' before c} (1 - v_c')``, treating the trijets' validities as independent
  (they share jets, so this is an approximation). The observable is the mean mass given a valid
  trijet, ``sum_c pi_c m_c / sum_c pi_c``. Each ``pi_c`` is a product of sigmoids, so it converges
  to the hard choice as the hardness grows and its gradient sees the choice switching; at finite
  hardness it blends the masses of competing trijets, which biases the mass (measured in
  ``benchmarks/README.md``). A softmax over pT (``pi_c ∝ v_c exp(pT_c / T)``) would not converge:
  the validity tails and the pT preference both sharpen with the hardness, so a barely invalid
  trijet of higher pT keeps its weight.
* *choice held fixed*: choose with the hard twin on the hard selection flags
  (``best_trijet_mass(t, hard_w, hard_b, hardness=HARD)``, at skim time or under
  ``jax.lax.stop_gradient``) and keep only the event weight soft. The observable is then exactly the
  hard one at the current cuts (no bias in the mass); the gradient ignores the change of choice.

With ``hardness=HARD`` and 0/1 weights :func:`best_trijet_mass` is exactly the AGC's choice: the
first trijet (in ``ak.combinations`` order) with the largest pT among the valid ones; 0 where there
is none.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffana._types import EventValues, Hardness, ObjectValues
from diffana.pipeline.counting import object_sum
from diffana.pipeline.hardness import float_dtype, is_hard

__all__ = ["Trijets", "best_trijet_mass", "scalar_sum", "trijet_candidates", "trijet_indices"]


def scalar_sum(values: ObjectValues, weights: ObjectValues, *, axis: int = -1) -> EventValues:
    """``sum_j weights_j * values_j`` per event: H_T over soft-selected jets (``axis``: the object
    axis, see :func:`~diffana.pipeline.counting.columns`).

    Examples:
        >>> scalar_sum(jnp.array([[50.0, 40.0, 30.0]]), jnp.array([[1.0, 1.0, 0.5]])).tolist()
        [105.0]
    """
    return object_sum(jnp.asarray(values) * weights, axis)


def trijet_indices(objects: int) -> np.ndarray:
    """The ``[C, 3]`` jet indices of every trijet, in ``ak.combinations(jets, 3)`` order.

    Examples:
        >>> trijet_indices(4).tolist()
        [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]
    """
    return np.array(list(itertools.combinations(range(objects), 3)), dtype=np.int32).reshape(-1, 3)


class Trijets(NamedTuple):
    """Every trijet of each event, ``[events, C]``: vector-sum pT, invariant mass, and the trijet
    indices in decreasing pT (ties in ``ak.combinations`` order)."""

    pt: jax.Array
    mass: jax.Array
    order: jax.Array


def trijet_candidates(
    pt: ObjectValues, eta: ObjectValues, phi: ObjectValues, mass: ObjectValues
) -> Trijets:
    """Kinematics of every trijet of padded jets (pad with zeros; masked out later by the weights).

    Components are summed in the order ``(j1 + j2) + j3``; the mass is
    ``sqrt(max(E^2 - p^2, 0))``. These depend only on the jets, so a processor can compute them
    once per block (at skim time).

    Examples:
        >>> pt, phi = jnp.array([[40.0, 30.0, 20.0]]), jnp.array([[0.0, 2.0, 4.0]])
        >>> t = trijet_candidates(pt, jnp.zeros((1, 3)), phi, jnp.zeros((1, 3)))
        >>> round(float(t.pt[0, 0]), 3), round(float(t.mass[0, 0]), 3)
        (18.869, 88.0)
    """
    pt, eta, phi, mass = (jnp.asarray(a) for a in (pt, eta, phi, mass))
    px, py, pz = pt * jnp.cos(phi), pt * jnp.sin(phi), pt * jnp.sinh(eta)
    energy = _sqrt(px * px + py * py + pz * pz + mass * mass)
    combos = trijet_indices(pt.shape[-1])

    def total(component: jax.Array) -> jax.Array:
        a, b, c = (component[..., combos[:, i]] for i in range(3))
        return (a + b) + c

    spx, spy, spz, se = (total(v) for v in (px, py, pz, energy))
    mass2 = se * se - (spx * spx + spy * spy + spz * spz)
    trijet_pt = _sqrt(spx * spx + spy * spy)
    order = jnp.argsort(-trijet_pt, axis=-1, stable=True)
    return Trijets(trijet_pt, _sqrt(mass2), order)


def _sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(max(x, 0))`` with a zero (not infinite) derivative at 0: padding jets have p = 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _validity(selected: ObjectValues, btagged: ObjectValues) -> jax.Array:
    combos = trijet_indices(jnp.shape(selected)[-1])
    w = [jnp.asarray(selected)[..., combos[:, i]] for i in range(3)]
    fail = [1.0 - jnp.asarray(btagged)[..., combos[:, i]] for i in range(3)]
    return (w[0] * w[1] * w[2]) * (1.0 - fail[0] * fail[1] * fail[2])


def best_trijet_mass(
    trijets: Trijets,
    selected: ObjectValues,
    btagged: ObjectValues,
    *,
    hardness: Hardness,
) -> EventValues:
    """Mass of the highest-pT trijet with at least one b-tagged jet: soft choice, exact when hard.

    Args:
        trijets: from :func:`trijet_candidates`.
        selected: per-jet selection weights (0 for padding), ``[events, objects]``.
        btagged: per-jet b-tag pass weights (the selection is applied through ``selected``).
        hardness: ``HARD`` gives the exact choice; a finite value (the weights carry the softness)
            gives the mean mass over the soft choice.

    Returns:
        The (mean) mass per event; 0 for events without a valid trijet.

    Examples:
        >>> from diffana.pipeline import HARD
        >>> pt, mass = jnp.array([[120.0, 150.0, 90.0, 60.0]]), jnp.array([[170.0, 200.0, 160.0, 140.0]])
        >>> t = Trijets(pt, mass, jnp.array([[1, 0, 2, 3]]))  # the 4 trijets of 4 jets
        >>> selected, btag = jnp.ones((1, 4)), jnp.array([[0.0, 0.0, 0.0, 1.0]])
        >>> float(best_trijet_mass(t, selected, btag, hardness=HARD)[0])  # trijet 1: jets 0, 1, 3
        200.0
        >>> soft = best_trijet_mass(t, selected, jnp.array([[0.0, 0.0, 0.0, 0.9]]), hardness=1.0)
        >>> round(float(soft[0]), 2)  # (0.9 * 200 + 0.09 * 160 + 0.009 * 140) / 0.999
        195.86
    """
    dtype = float_dtype(trijets.mass)
    valid = jnp.take_along_axis(_validity(selected, btagged).astype(dtype), trijets.order, -1)
    mass = jnp.take_along_axis(jnp.asarray(trijets.mass, dtype), trijets.order, -1)
    if is_hard(hardness):
        first = jnp.argmax(valid > 0, axis=-1)
        chosen = jnp.take_along_axis(mass, first[..., None], axis=-1)[..., 0]
        return jnp.where(jnp.any(valid > 0, axis=-1), chosen, 0.0)
    none_before = jnp.cumprod(1.0 - valid, axis=-1)
    none_before = jnp.concatenate([jnp.ones_like(valid[..., :1]), none_before[..., :-1]], -1)
    first = valid * none_before
    total = jnp.sum(first, axis=-1)
    safe = jnp.where(total > 0, total, 1.0)
    return jnp.where(total > 0, jnp.sum(first * mass, axis=-1) / safe, 0.0)
