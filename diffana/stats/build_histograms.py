"""Histograms as the model builder takes them: reading, rebinning, and the AGC's pseudo-data.

A :class:`Histogram` holds bin sums that may be traced JAX values (soft histograms carry gradients)
and static edges. :func:`rebin` merges bins the way the AGC feeds cabinetry: the AGC slices its
25 bins of 20 GeV with ``h[110j::hist.rebin(2)]`` and cabinetry reads the result without flow
bins, so everything below the first or above the last new edge, flow bins included, is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from diffana.errors import WorkspaceError

__all__ = ["Histogram", "agc_pseudodata", "as_histogram", "rebin"]


def _edge_tuple(edges: Any) -> tuple[float, ...]:
    try:
        return tuple(float(e) for e in np.asarray(edges, dtype=float).ravel())
    except (TypeError, jax.errors.ConcretizationTypeError) as err:
        msg = (
            "histogram edges must be concrete numbers, not traced JAX values; keep the edges "
            f"outside jit/grad arguments ({err.__class__.__name__})"
        )
        raise WorkspaceError(msg) from err


class Histogram(eqx.Module):
    """A 1-D histogram: bin sums (possibly traced), their variances, and static edges.

    ``values`` and ``variances`` have ``len(edges) - 1`` entries, or ``len(edges) + 1`` when the
    under- and overflow bins are included (first and last).
    """

    values: Float[ArrayLike, " bins"]
    edges: tuple[float, ...] = eqx.field(static=True, converter=_edge_tuple)
    variances: Float[ArrayLike, " bins"] | None = None


def as_histogram(obj: Any, name: str = "histogram") -> Histogram:
    """Read a :class:`Histogram`, a dict, a ``SoftHistogram``-like or a UHI (``hist``) object.

    A dict has ``edges`` and ``values`` (or ``contents``, the AGC reference files' key), and
    optionally ``variances``; an object with ``sumw``/``sumw2``/``edges`` attributes is read as
    such; a UHI histogram through ``values(flow=True)``, ``variances(flow=True)`` and its axis.

    Examples:
        >>> as_histogram({"contents": [0.0, 1.0, 2.0, 5.0], "edges": [0, 1, 2]}).edges
        (0.0, 1.0, 2.0)
    """
    if isinstance(obj, Histogram):
        return obj
    if isinstance(obj, Mapping):
        values = obj.get("values", obj.get("contents"))
        if values is None or "edges" not in obj:
            msg = f"histogram {name!r}: a dict needs 'values' (or 'contents') and 'edges'"
            raise WorkspaceError(msg)
        return Histogram(values, obj["edges"], obj.get("variances"))
    if hasattr(obj, "sumw") and hasattr(obj, "edges"):
        return Histogram(obj.sumw, obj.edges, getattr(obj, "sumw2", None))
    if hasattr(obj, "axes") and callable(getattr(obj, "values", None)):
        return Histogram(obj.values(flow=True), obj.axes[0].edges, obj.variances(flow=True))
    msg = f"histogram {name!r}: cannot read a {type(obj).__name__}; give a dict or a Histogram"
    raise WorkspaceError(msg)


def rebin(
    values: Float[ArrayLike, "... bins"],
    edges: Iterable[float],
    binning: Iterable[float] | None = None,
    *,
    name: str = "histogram",
) -> Float[Array, "... new_bins"]:
    """Sum the bins of ``values`` (last axis) into ``binning``, dropping flow and outside bins.

    ``values`` may include the under/overflow bins (``len(edges) + 1`` entries) or not
    (``len(edges) - 1``); either way they are not part of the result, nor are bins outside
    ``[binning[0], binning[-1]]``. ``binning=None`` keeps the bins.

    Raises:
        WorkspaceError: if the length of ``values`` does not fit ``edges`` or an edge of
            ``binning`` is not an edge of the histogram.

    Examples:
        >>> rebin([9.0, 1.0, 2.0, 3.0, 4.0, 9.0], [0, 10, 20, 30, 40], [10, 30]).tolist()
        [5.0]
    """
    fine = np.asarray(_edge_tuple(edges))
    values = jnp.asarray(values)
    n = values.shape[-1]
    if n == len(fine) + 1:
        values = values[..., 1:-1]
    elif n != len(fine) - 1:
        msg = (
            f"histogram {name!r}: {n} bin values do not fit {len(fine)} edges; give "
            f"{len(fine) - 1} values (or {len(fine) + 1} with under- and overflow)"
        )
        raise WorkspaceError(msg)
    if binning is None:
        return values
    indices = []
    for edge in _edge_tuple(binning):
        match = np.flatnonzero(np.abs(fine - edge) <= 1e-9 * max(1.0, abs(edge)))
        if match.size == 0:
            msg = (
                f"histogram {name!r}: the Binning edge {edge:g} is not one of its edges "
                f"{fine.tolist()}; choose Binning edges among the histogram's edges"
            )
            raise WorkspaceError(msg)
        indices.append(int(match[0]))
    merge = np.zeros((len(fine) - 1, len(indices) - 1))  # fine bin -> new bin, one matmul
    for j, (a, b) in enumerate(pairwise(indices)):
        merge[a:b, j] = 1.0
    return values @ merge


def agc_pseudodata(
    histograms: Mapping[str, Any], regions: Iterable[str] = ("4j1b", "4j2b")
) -> dict[str, Histogram]:
    """The AGC's pseudo-data: ``(ttbar ME_var + ttbar PS_var) / 2 + wjets`` per region.

    The AGC has no real data; its pseudo-data is the average of the two alternative ttbar
    samples plus the nominal W+jets (AGC v2 ``utils/file_output.py``). Variances follow from the
    same sum, ``(var_ME + var_PS) / 4 + var_W``, when all three histograms carry them.

    Args:
        histograms: AGC-named histograms with ``<region>_ttbar_ME_var``, ``<region>_ttbar_PS_var``
            and ``<region>_wjets`` for every region.
        regions: the AGC region paths.

    Returns:
        ``{"<region>_pseudodata": Histogram}``, with the flow bins kept if the inputs have them.
        To fill only what is missing: ``histograms = {**agc_pseudodata(h), **h}``.

    Examples:
        >>> e = [0, 1]
        >>> agc_pseudodata({"SR_ttbar_ME_var": {"values": [2.0], "edges": e},
        ...     "SR_ttbar_PS_var": {"values": [4.0], "edges": e},
        ...     "SR_wjets": {"values": [1.0], "edges": e}}, ["SR"])["SR_pseudodata"].values.tolist()
        [4.0]
    """
    out = {}
    for region in regions:
        names = [f"{region}_ttbar_ME_var", f"{region}_ttbar_PS_var", f"{region}_wjets"]
        for name in names:
            if name not in histograms:
                msg = f"agc_pseudodata: histogram {name!r} is missing; it needs {names}"
                raise WorkspaceError(msg)
        me, ps, wjets = (as_histogram(histograms[n], n) for n in names)
        if not me.edges == ps.edges == wjets.edges or not (
            np.shape(me.values) == np.shape(ps.values) == np.shape(wjets.values)
        ):
            msg = f"agc_pseudodata: the histograms {names} differ in their binning"
            raise WorkspaceError(msg)
        values = (jnp.asarray(me.values) + jnp.asarray(ps.values)) / 2 + jnp.asarray(wjets.values)
        variances = None
        if all(h.variances is not None for h in (me, ps, wjets)):
            variances = (jnp.asarray(me.variances) + jnp.asarray(ps.variances)) / 4 + jnp.asarray(
                wjets.variances
            )
        out[f"{region}_pseudodata"] = Histogram(values, me.edges, variances)
    return out
