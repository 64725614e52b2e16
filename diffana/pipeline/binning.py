"""Bin definitions and the exact bin index of ``hist.Hist`` for them.

:class:`Regular` and :class:`Variable` mirror ``hist.axis.Regular`` and ``hist.axis.Variable`` and
reproduce boost-histogram's arithmetic bit for bit, so the hard twin of a fill equals ``hist.Hist``:

* ``Regular(bins, start, stop)``: index ``floor((x - start) / (stop - start) * bins)`` (computed in
  float64 when JAX's 64-bit mode is on, as boost does), edges ``(1 - i/n) start + (i/n) stop``. This
  is not the same as comparing ``x`` with the edges: near an interior edge the two can differ by one
  bin, and hist uses the formula.
* ``Variable(edges)``: index of the last edge ``<= x`` (``upper_bound``), bins ``[e_i, e_{i+1})``.

For both, ``x`` equal to the last edge, ``+inf`` and NaN go to the overflow bin and ``-inf`` to the
underflow bin. Index ``-1`` is the underflow bin and ``bins`` the overflow bin. ``start``, ``stop``
and ``edges`` may be traced JAX values (bin edges as parameters); ``bins`` is static.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from diffana._types import Indices, Scalar, Values
from diffana.errors import ConfigError
from diffana.pipeline.hardness import concrete_float

__all__ = ["Binning", "Regular", "Variable", "as_binning", "bin_index"]


def _index_dtype(dtype: Any) -> Any:
    """float64 when JAX allows it (boost's arithmetic), else ``dtype``."""
    return jnp.float64 if jax.config.read("jax_enable_x64") else dtype


class Regular(eqx.Module):
    """``bins`` equal bins over ``[start, stop)``, as ``hist.axis.Regular(bins, start, stop)``.

    Examples:
        >>> Regular(25, 50.0, 550.0).edges[:3].tolist()
        [50.0, 70.0, 90.0]
    """

    bins: int = eqx.field(static=True)
    start: Scalar
    stop: Scalar

    def __check_init__(self) -> None:
        if not isinstance(self.bins, int) or self.bins < 1:
            msg = f"Regular binning needs a positive integer number of bins, got {self.bins!r}"
            raise ConfigError(msg)
        start, stop = concrete_float(self.start), concrete_float(self.stop)
        if start is not None and stop is not None and not (math.isfinite(start) and stop > start):
            msg = f"Regular binning needs finite start < stop, got start={start!r}, stop={stop!r}"
            raise ConfigError(msg)

    def edge(self, i: Indices, dtype: Any = None) -> Array:
        """Edge number ``i`` (any integer, extrapolated), boost-histogram's formula."""
        start = jnp.asarray(self.start, dtype)
        stop = jnp.asarray(self.stop, dtype)
        z = jnp.asarray(i).astype(start.dtype) / self.bins
        return (1 - z) * start + z * (start + (stop - start))

    @property
    def edges(self) -> Float[Array, " edges"]:
        start, stop = concrete_float(self.start), concrete_float(self.stop)
        if start is None or stop is None:
            return self.edge(jnp.arange(self.bins + 1), _index_dtype(float))
        # NumPy, not XLA: XLA contracts the formula into fused multiply-adds (1 ulp off boost).
        z = np.arange(self.bins + 1) / self.bins
        return jnp.asarray((1 - z) * start + z * (start + (stop - start)))

    def min_width(self) -> float | None:
        start, stop = concrete_float(self.start), concrete_float(self.stop)
        return None if start is None or stop is None else (stop - start) / self.bins

    def index(self, x: Values, dtype: Any, exact: bool = False) -> Indices:
        """Bin index in ``[-1, bins]`` computed in ``dtype``; boost's formula.

        With ``exact``, the division is a true IEEE division: XLA otherwise multiplies by the
        reciprocal of a broadcast divisor, which moves values near an edge by one bin.
        """
        x = jnp.asarray(x, dtype)
        start = jnp.asarray(self.start, dtype)
        delta = jnp.asarray(self.stop, dtype) - start
        if exact:
            delta = jax.lax.optimization_barrier(jnp.broadcast_to(delta, x.shape))
        z = (x - start) / delta
        inside = jnp.floor(jnp.where(z >= 0, z * self.bins, -1.0))
        return jnp.where(z < 1, inside, self.bins).astype(jnp.int32)


class Variable(eqx.Module):
    """Bins between increasing ``edges``, as ``hist.axis.Variable(edges)``.

    Examples:
        >>> Variable([0.0, 1.0, 5.0]).bins
        2
    """

    edges: Float[Array, " edges"]

    def __init__(self, edges: ArrayLike) -> None:
        if not isinstance(edges, jax.Array | jax.core.Tracer):
            edges = np.asarray(edges, dtype=float)
            if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
                msg = (
                    f"Variable binning needs at least two strictly increasing edges, got {edges!r}"
                )
                raise ConfigError(msg)
            if not np.all(np.isfinite(edges)):
                msg = f"Variable binning needs finite edges, got {edges!r}"
                raise ConfigError(msg)
        self.edges = jnp.asarray(edges)

    @property
    def bins(self) -> int:
        return int(self.edges.shape[-1]) - 1

    def edge(self, i: Indices, dtype: Any = None) -> Array:
        """Edge number ``i`` (clipped to the valid range)."""
        return jnp.take(jnp.asarray(self.edges, dtype), jnp.clip(i, 0, self.bins))

    def min_width(self) -> float | None:
        if isinstance(self.edges, jax.core.Tracer):
            return None
        return float(np.min(np.diff(np.asarray(self.edges))))

    def index(self, x: Values, dtype: Any, exact: bool = False) -> Indices:
        """Bin index in ``[-1, bins]``: ``upper_bound`` over the edges, NaN to overflow."""
        x = jnp.asarray(x, dtype)
        edges = jnp.asarray(self.edges, dtype)
        method = "compare_all" if self.bins <= 64 else "scan_unrolled"
        upper = jnp.searchsorted(edges, x, side="right", method=method)
        return jnp.where(jnp.isnan(x), self.bins, upper - 1).astype(jnp.int32)


Binning = Regular | Variable


def as_binning(binning: Binning | ArrayLike) -> Binning:
    """A :class:`Regular` or :class:`Variable`; an array of edges becomes :class:`Variable`.

    Examples:
        >>> as_binning([0.0, 1.0, 2.0]).bins
        2
    """
    if isinstance(binning, Regular | Variable):
        return binning
    return Variable(binning)


def bin_index(x: Values, binning: Binning | ArrayLike) -> Indices:
    """Exact ``hist.Hist`` bin index of ``x``: ``-1`` underflow, ``bins`` overflow.

    Examples:
        >>> import numpy as np
        >>> bin_index(np.array([49.0, 50.0, 70.0, 550.0, np.nan]), Regular(25, 50.0, 550.0)).tolist()
        [-1, 0, 1, 25, 25]
    """
    binning = as_binning(binning)
    return binning.index(x, _index_dtype(jnp.result_type(x, float)), exact=True)
