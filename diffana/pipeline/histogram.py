"""The histogram every soft or hard fill returns: a pytree of bin sums with flow bins.

:class:`SoftHistogram` is an ``equinox.Module`` (so it passes through ``jit``, ``vmap`` and the
derivative transforms, and sums across chunks with ``+``). Outside JAX it is a UHI
``PlottableHistogram`` (``mplhep.histplot(h)`` plots it) and converts to a ``hist.Hist`` with
``Weight`` storage, flow bins included, with :meth:`SoftHistogram.to_hist`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["SoftHistogram"]


@dataclass(frozen=True)
class _Traits:
    circular: bool = False
    discrete: bool = False


@dataclass(frozen=True, eq=False)
class _EdgesAxis:
    """A continuous UHI axis over ``edges``; items are ``(low, high)`` pairs."""

    edges: tuple[float, ...]
    name: str
    label: str
    traits: _Traits = _Traits()

    def __getitem__(self, index: int) -> tuple[float, float]:
        if not -len(self) <= index < len(self):
            msg = f"bin {index} out of range for an axis with {len(self)} bins"
            raise IndexError(msg)
        index %= len(self)
        return self.edges[index], self.edges[index + 1]

    def __len__(self) -> int:
        return len(self.edges) - 1

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _EdgesAxis) and self.edges == other.edges

    def __hash__(self) -> int:
        return hash(self.edges)


@dataclass(frozen=True)
class _IndexAxis:
    """A discrete UHI axis over the leading (variation) indices ``0 .. size - 1``."""

    size: int
    name: str
    label: str = ""
    traits: _Traits = _Traits(discrete=True)

    def __getitem__(self, index: int) -> int:
        return range(self.size)[index]

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.size))


class SoftHistogram(eqx.Module):
    """Weighted one-dimensional histogram whose contents may carry gradients.

    ``sumw`` and ``sumw2`` hold the sum of weights and of squared weights per bin, with the underflow
    bin first and the overflow bin last: their last axis has ``len(edges) + 1`` entries. Leading axes,
    if any, index variations of the same observable.

    Examples:
        >>> import numpy as np
        >>> h = SoftHistogram(np.array([0.0, 1.0, 2.0, 0.5]), np.array([0.0, 1.0, 2.5, 0.25]),
        ...                   np.array([0.0, 1.0, 2.0]), "x", "x [GeV]")
        >>> h.values().tolist(), h.values(flow=True)[-1].item(), len(h.axes[0])
        ([1.0, 2.0], 0.5, 2)
        >>> h.to_hist().view(flow=True).value.tolist()
        [0.0, 1.0, 2.0, 0.5]
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

    # UHI PlottableHistogram -----------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "COUNT"

    @property
    def axes(self) -> tuple[_IndexAxis | _EdgesAxis, ...]:
        leading = tuple(
            _IndexAxis(size, f"variation{i}") for i, size in enumerate(np.shape(self.sumw)[:-1])
        )
        edges = tuple(float(e) for e in np.asarray(self.edges))
        return (*leading, _EdgesAxis(edges, self.axis_name, self.label or self.axis_name))

    def values(self, flow: bool = False) -> np.ndarray:
        """Sums of weights per bin as NumPy, without (or with) the flow bins."""
        return self._view(self.sumw, flow)

    def variances(self, flow: bool = False) -> np.ndarray:
        """Sums of squared weights per bin (the statistical variance of each bin)."""
        return self._view(self.sumw2, flow)

    def counts(self, flow: bool = False) -> np.ndarray:
        """Effective entries ``sumw**2 / sumw2`` (0 where ``sumw2`` is 0), as UHI defines them."""
        sumw, sumw2 = self.values(flow), self.variances(flow)
        return np.divide(sumw**2, sumw2, out=np.zeros_like(sumw), where=sumw2 != 0)

    @staticmethod
    def _view(array: Array, flow: bool) -> np.ndarray:
        array = np.asarray(array, dtype=np.float64)
        return array if flow else array[..., 1:-1]

    # hist ----------------------------------------------------------------------------------
    def to_hist(self):  # -> hist.Hist (hist imported lazily: it is slow to import)
        """A ``hist.Hist`` with ``Weight`` storage holding the same sums, flow bins included.

        The observable axis is ``Regular`` when the edges are those of
        ``hist.axis.Regular(nbins, first, last)`` (to a few ulp), else ``Variable``; leading axes become
        ``Integer`` axes named ``variation0``, ``variation1``, ...
        """
        import hist

        edges = np.asarray(self.edges, dtype=np.float64)
        regular = hist.axis.Regular(self.nbins, edges[0], edges[-1])
        kwargs = {"name": self.axis_name, "label": self.label or self.axis_name}
        # Edges computed under jit may differ from boost's by an ulp (XLA fuses multiply-adds).
        if np.allclose(regular.edges, edges, rtol=8 * np.finfo(float).eps, atol=0):
            axis = hist.axis.Regular(self.nbins, edges[0], edges[-1], **kwargs)
        else:
            axis = hist.axis.Variable(edges, **kwargs)
        leading = [
            hist.axis.Integer(0, a.size, name=a.name, underflow=False, overflow=False)
            for a in self.axes[:-1]
        ]
        out = hist.Hist(*leading, axis, storage=hist.storage.Weight())
        view = out.view(flow=True)
        view["value"] = self.values(flow=True)
        view["variance"] = self.variances(flow=True)
        return out
