"""From awkward's jagged arrays to what JAX takes: dense padded arrays, or flat content + counts.

awkward's JAX backend is deprecated, so jagged collections cross into JAX in one of two forms:

* **padded**: ``[events, target]`` values plus a boolean mask (``ak.pad_none`` + ``ak.fill_none`` +
  ``ak.to_numpy``). Per-object soft ops then run on a static object axis, and per-event sums are
  unrolled (:func:`diffana.pipeline.object_sum`). Events with more than ``target`` objects are an
  error unless ``clip=True`` keeps the first ``target`` (NanoAOD collections are pT-ordered).
* **flat**: the content of all objects plus per-event counts; per-event sums are
  ``jax.ops.segment_sum`` over the event index of each object (:func:`per_event_sum`). Nothing is
  dropped, at the cost of a scatter.

On a dask-awkward typetracer (the column-optimisation pass of a skim), :func:`pad` returns the padded
awkward arrays without converting them, so a skim can call it on both passes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import awkward as ak
import jax
import numpy as np

from diffana._types import EventValues
from diffana.errors import ConfigError

__all__ = ["Flat", "Padded", "flatten", "pad", "per_event_sum", "segment_ids"]


class Padded(NamedTuple):
    """``values[event, slot]`` with ``fill`` where ``mask`` is False."""

    values: Any
    mask: Any


class Flat(NamedTuple):
    """All objects' values in event order, and the number of objects of each event."""

    content: np.ndarray
    counts: np.ndarray


def pad(
    array: ak.Array,
    target: int,
    *,
    fill: float = 0.0,
    clip: bool = False,
    dtype: Any = None,
    name: str = "array",
) -> Padded:
    """Pad a jagged ``[events, var]`` array to ``[events, target]`` with a mask of real objects.

    Args:
        array: one jagged numeric field, e.g. ``events.Jet.pt``.
        target: the padded length of the object axis.
        fill: value of the padding slots (keep it finite: masked weights multiply it).
        clip: keep only the first ``target`` objects of longer events; without it they raise.
        dtype: NumPy dtype of the values (default: the array's, e.g. float32 for NanoAOD pT).
        name: how errors name the array (e.g. ``"Jet_pt"``).

    Raises:
        ConfigError: an event has more than ``target`` objects and ``clip`` is False.

    Examples:
        >>> values, mask = pad(ak.Array([[3.0, 2.0], [], [5.0]]), 3)
        >>> values.tolist(), mask.tolist()
        ([[3.0, 2.0, 0.0], [0.0, 0.0, 0.0], [5.0, 0.0, 0.0]], [[True, True, False], [False, False, False], [True, False, False]])
    """
    if not isinstance(target, int) or target < 0:
        msg = f"pad target for {name} must be a non-negative integer, got {target!r}"
        raise ConfigError(msg)
    typetracer = ak.backend(array) == "typetracer"
    if not clip and not typetracer and len(array):
        most = int(ak.max(ak.num(array, axis=1)))
        if most > target:
            msg = (
                f"{name} has events with up to {most} objects, more than the padded length "
                f"{target}; raise the target to {most} or pass clip=True to keep the first {target}"
            )
            raise ConfigError(msg)
    padded = ak.pad_none(array, target, axis=1, clip=True)
    mask = ~ak.is_none(padded, axis=1)
    values = ak.fill_none(padded, fill)
    if typetracer:
        return Padded(values, mask)
    if dtype is None:  # keep the array's dtype (fill_none with a Python float would promote it)
        dtype = ak.to_numpy(ak.flatten(array, axis=None)).dtype
    return Padded(ak.to_numpy(values).astype(dtype), ak.to_numpy(mask))


def flatten(array: ak.Array, *, dtype: Any = None) -> Flat:
    """Flat content and per-event counts of a jagged ``[events, var]`` numeric array.

    Examples:
        >>> flatten(ak.Array([[3.0, 2.0], [], [5.0]]))
        Flat(content=array([3., 2., 5.]), counts=array([2, 0, 1]))
    """
    content = ak.to_numpy(ak.flatten(array, axis=1))
    counts = ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
    return Flat(content if dtype is None else content.astype(dtype), counts)


def segment_ids(counts: np.ndarray) -> np.ndarray:
    """The event index of every object of the flat content: ``[0, 0, 2]`` for counts ``[2, 0, 1]``.

    Examples:
        >>> segment_ids(np.array([2, 0, 1])).tolist()
        [0, 0, 2]
    """
    counts = np.asarray(counts)
    return np.repeat(np.arange(counts.size, dtype=np.int32), counts)


def per_event_sum(content: jax.Array, ids: jax.Array, num_events: int) -> EventValues:
    """Sum of the flat ``content`` of each event (``jax.ops.segment_sum``; 0 for empty events).

    Examples:
        >>> import jax.numpy as jnp
        >>> per_event_sum(jnp.array([3.0, 2.0, 5.0]), jnp.array([0, 0, 2]), 3).tolist()
        [5.0, 0.0, 5.0]
    """
    return jax.ops.segment_sum(content, ids, num_segments=num_events, indices_are_sorted=True)
