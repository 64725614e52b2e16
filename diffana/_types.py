"""Shape-annotated array types shared across diffana (jaxtyping aliases).

The dimension names are the vocabulary of the package: ``events`` runs over the events of a block,
``objects`` over the padded objects (jets, leptons) of an event, ``variations`` over the columns of a
weight matrix, ``bins_with_flow`` over the bins of a histogram with the underflow bin first and the
overflow bin last.
"""

from __future__ import annotations

from typing import TypeAlias

from jaxtyping import Array, ArrayLike, Bool, Float, Int

__all__ = [
    "EventIndex",
    "EventMask",
    "EventValues",
    "EventWeights",
    "Hardness",
    "Indices",
    "ObjectMask",
    "ObjectValues",
    "Scalar",
    "Values",
]

Scalar: TypeAlias = Float[ArrayLike, ""]
"""A scalar: a Python float, a 0-d array or a traced 0-d JAX value."""

Hardness: TypeAlias = float | Float[Array, ""]
"""Positive multiplier of every sharpness; ``diffana.pipeline.HARD`` (``math.inf``) means exact."""

Values: TypeAlias = Float[Array, "..."]
"""Any floating array; soft ops broadcast over it."""

EventValues: TypeAlias = Float[Array, " events"]
EventMask: TypeAlias = Bool[Array, " events"]
EventWeights: TypeAlias = Float[Array, "events *variations"]  # noqa: F821
"""One weight per event, or a weight matrix ``[events, variations]`` (e.g. b-tag systematics)."""

ObjectValues: TypeAlias = Float[Array, "events objects"]
ObjectMask: TypeAlias = Bool[Array, "events objects"]

EventIndex: TypeAlias = Int[Array, " events"]
Indices: TypeAlias = Int[ArrayLike, "..."]
"""Integer indices of any shape (bin numbers, edge numbers)."""
