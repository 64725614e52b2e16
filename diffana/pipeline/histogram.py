"""The histogram every soft or hard fill returns: a pytree of bin sums with flow bins."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["SoftHistogram"]


class SoftHistogram(eqx.Module):
    """Weighted one-dimensional histogram whose contents may carry gradients.

    ``sumw`` and ``sumw2`` hold the sum of weights and of squared weights per bin, with the underflow
    bin first and the overflow bin last: their last axis has ``len(edges) + 1`` entries. Leading axes,
    if any, index variations of the same observable.
    """

    sumw: Float[Array, "... bins_with_flow"]
    sumw2: Float[Array, "... bins_with_flow"]
    edges: Float[Array, " edges"]
    axis_name: str = eqx.field(static=True, default="observable")
    label: str = eqx.field(static=True, default="")

    def __add__(self, other: SoftHistogram) -> SoftHistogram:
        return SoftHistogram(
            self.sumw + other.sumw,
            self.sumw2 + other.sumw2,
            self.edges,
            self.axis_name,
            self.label,
        )

    @property
    def nbins(self) -> int:
        return int(jnp.shape(self.edges)[-1]) - 1
