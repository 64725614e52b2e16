"""Soft histograms as ``hist.Hist``: the publishable form of a hard pass.

Examples:
    >>> import jax.numpy as jnp
    >>> from diffana.pipeline.histogram import SoftHistogram
    >>> h = to_hist(SoftHistogram(jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 4.0, 9.0]), jnp.array([0.0, 1.0]), "ht"))
    >>> h.values().tolist(), h.values(flow=True).tolist()
    ([2.0], [1.0, 2.0, 3.0])
"""

from __future__ import annotations

import hist
import numpy as np

from diffana.pipeline.histogram import SoftHistogram

__all__ = ["to_hist"]


def to_hist(h: SoftHistogram) -> hist.Hist:
    """A weighted ``hist.Hist`` with the same bins, flow bins, sums of weights and variances.

    Leading axes of ``h`` (variations) become ``hist.axis.Integer`` axes named ``variation0``, ...
    """
    sumw, sumw2 = np.asarray(h.sumw, dtype=np.float64), np.asarray(h.sumw2, dtype=np.float64)
    leading = [
        hist.axis.Integer(0, n, name=f"variation{i}", underflow=False, overflow=False)
        for i, n in enumerate(sumw.shape[:-1])
    ]
    axis = hist.axis.Variable(
        np.asarray(h.edges, dtype=np.float64), name=h.axis_name, label=h.label or h.axis_name
    )
    out = hist.Hist(*leading, axis, storage=hist.storage.Weight())
    view = out.view(flow=True)
    view["value"] = sumw
    view["variance"] = sumw2
    return out
