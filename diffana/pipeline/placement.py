"""The yields of a builder's spec as one gather per field: fast to compile, exact.

:func:`diffana.stats.yields.yields_from_spec` places every number of a spec into the arrays of
:class:`~diffana.stats.yields.Yields`, one ``.at[].set`` per sample and modifier when traced: for
the AGC model some 1700 operations whose compilation takes longer than the rest of the objective.
The map is a pure placement (each yield is a number of the spec or a neutral constant), so it is
found once by running ``yields_from_spec`` on a spec whose numbers are their own positions, and then
applied to traced specs as one ``take`` per field. :class:`Placement` checks on construction that
it reproduces ``yields_from_spec`` exactly.

Examples:
    >>> import numpy as np, jax.numpy as jnp
    >>> from diffana.stats.build import to_json
    >>> from diffana.stats.structure import structure_from_spec
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": jnp.array([5.0, 6.0]), "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": jnp.array([50.0, 52.0]), "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": jnp.array([3.0, 7.0])}]}]}]}
    >>> placement = Placement(structure_from_spec(to_json(spec)), spec)
    >>> placement(spec).nominal.tolist()
    [[50.0, 52.0], [5.0, 6.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffana.errors import ModelError
from diffana.stats.structure import ModelStructure
from diffana.stats.yields import Yields, yields_from_spec

__all__ = ["Placement"]

_BASE = 1.0e9  # tags start here: far above the neutral constants (0, 1) yields_from_spec fills in


def _is_number(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array | np.ndarray | np.generic | float | int) and not isinstance(
        leaf, bool
    )


class Placement:
    """``spec -> Yields`` for specs shaped like ``spec`` (same channels, samples, modifiers)."""

    def __init__(self, structure: ModelStructure, spec: Mapping[str, Any]) -> None:
        leaves, self.treedef = jax.tree_util.tree_flatten(spec)
        self.numeric = [i for i, leaf in enumerate(leaves) if _is_number(leaf)]
        tagged, start = list(leaves), 0
        for i in self.numeric:
            shape = np.shape(leaves[i])
            size = int(np.prod(shape, dtype=int))
            tagged[i] = _BASE + np.arange(start, start + size, dtype=np.float64).reshape(shape)
            start += size
        placed = yields_from_spec(structure, jax.tree_util.tree_unflatten(self.treedef, tagged))
        self.index: dict[str, np.ndarray] = {}
        self.constant: dict[str, np.ndarray] = {}
        self.tagged: dict[str, np.ndarray] = {}
        for field, array in zip(Yields._fields, placed, strict=True):
            array = np.asarray(array, dtype=np.float64)
            is_tag = array >= _BASE
            self.tagged[field] = is_tag
            self.index[field] = np.where(is_tag, array - _BASE, 0).astype(np.int64)
            self.constant[field] = np.where(is_tag, 0.0, array)
        concrete = [np.asarray(x) if _is_number(x) else x for x in leaves]
        reference = yields_from_spec(
            structure, jax.tree_util.tree_unflatten(self.treedef, concrete)
        )
        for field, ours, theirs in zip(Yields._fields, self(spec), reference, strict=True):
            if not np.array_equal(np.asarray(ours), np.asarray(theirs)):
                msg = f"the placement of {field} differs from yields_from_spec; report this bug"
                raise ModelError(msg)

    def __call__(self, spec: Mapping[str, Any]) -> Yields:
        """The yields of ``spec`` (numbers may be traced JAX values)."""
        leaves, treedef = jax.tree_util.tree_flatten(spec)
        if treedef != self.treedef:
            msg = "the spec's layout differs from the one the placement was made for"
            raise ModelError(msg)
        flat = jnp.concatenate(
            [jnp.ravel(jnp.asarray(leaves[i], dtype=jnp.float64)) for i in self.numeric]
        )
        return Yields(
            *(
                jnp.where(self.tagged[f], flat[self.index[f]], self.constant[f])
                for f in Yields._fields
            )
        )
