"""Phase 2 of the AGC ttbar processor: the selection and the histograms as one pure JAX function.

:func:`agc_histograms` is what :meth:`AGCTtbarProcessor.histograms
<diffana.processors.agc_ttbar.AGCTtbarProcessor.histograms>` runs on every block at every step. It
only combines diffana's soft ops (:mod:`diffana.pipeline`); :func:`nth_selected` (the pT of the
i-th selected jet, for the b-tag weights) is the one AGC-specific piece.

Precision: the soft pass computes in ``KernelSpec.dtype`` (float32 by default) with the event
weights relative to the block's largest weight, then scales the sums to float64; the hard pass
compares in the columns' own float32 (as NumPy does for the AGC) and fills in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from diffana.pipeline import (
    HARD,
    Regular,
    SoftHistogram,
    Trijets,
    at_least,
    best_trijet_mass,
    cut,
    exactly,
    is_hard,
    kde_histogram,
    scalar_sum,
    sigmoid_histogram,
    window,
)

__all__ = ["BINNING", "KernelSpec", "agc_histograms", "nth_selected"]

BINNING = Regular(25, 50.0, 550.0)
"""The AGC's histogram binning (under- and overflow bins are kept)."""
_LABELS = {"4j1b": "$H_T$ [GeV]", "4j2b": "$m_{bjj}$ [GeV]"}
_BTAG_VAR, _BTAG_PT, _SCALE_VAR = 0.075, 50.0, 0.025
_DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


class KernelSpec(NamedTuple):
    """The static settings of the kernel (hashable: they are part of the processor's state)."""

    widths: tuple[tuple[str, float], ...]  # sigmoid width of each parameter's cut
    jet_eta: bool = False
    observable_window: bool = False
    fill: str = "kde"
    bandwidth: float = 10.0
    dtype: str = "float32"
    counting: str = "poisson_binomial"
    trijet_choice: str = "fixed"
    trijet_table: bool = False  # the choice is tabulated (see agc_skim.trijet_columns)


def nth_selected(values: Any, weights: Any, n: int) -> Any:
    """Expected value of the 1st ... n-th selected object (0 if there is none), ``[events, n]``.

    Object ``j`` is the ``c``-th selected one with probability ``w_j P_{j-1}(c)``, where
    ``P_{j-1}(c)`` is the probability that exactly ``c`` of the objects before it are selected
    (independent objects, the recursion of :func:`diffana.pipeline.count_distribution`). With 0/1
    weights this is exactly the pT of the i-th selected jet, as the AGC's ``jets.pt[:, i]``.

    Examples:
        >>> nth_selected(jnp.array([[50.0, 40.0, 30.0]]), jnp.array([[1.0, 0.0, 1.0]]), 2).tolist()
        [[50.0, 30.0]]
    """
    prior = [jnp.ones_like(values[:, 0])] + [jnp.zeros_like(values[:, 0])] * (n - 1)
    out = [jnp.zeros_like(values[:, 0])] * n
    for j in range(values.shape[1]):
        w, v = weights[:, j], values[:, j]
        out = [out[c] + w * prior[c] * v for c in range(n)]
        prior = [prior[0] * (1.0 - w)] + [
            prior[c] * (1.0 - w) + prior[c - 1] * w for c in range(1, n)
        ]
    return jnp.stack(out, axis=-1)


def _tabulated_mass(columns: Mapping[str, Any], selected: Any, tagged: Any) -> Any:
    """m_bjj from ``trijet_table`` at ``n`` hard-selected and ``k`` hard-b-tagged jets; ``n`` and
    ``k`` are clipped to the table (4 .. J, 2 .. J): events outside fail the hard 4j2b selection,
    and their soft weight then fills the mass they would have with one more jet or tag."""
    table = jnp.asarray(columns["trijet_table"])
    real = jnp.asarray(columns["jet_pt"]) > 0
    n = jnp.sum(selected, axis=-1).astype(jnp.int32)
    k = jnp.sum(jnp.where(real, tagged, 0.0), axis=-1).astype(jnp.int32)
    width = table.shape[2] + 1
    n, k = jnp.clip(n, 4, width) - 4, jnp.clip(k, 2, width) - 2
    flat = table.reshape(table.shape[0], -1)
    return jnp.take_along_axis(flat, (n * table.shape[2] + k)[:, None], axis=1)[:, 0]


def _btag_factors(columns: Mapping[str, Any], jet_pt: Any, w_jet: Any) -> tuple[list[str], Any]:
    """Key suffixes and ``[events, variations]`` factors: nominal, then ``btag_var_{i}_{up,down}``
    (weight ``1 +- 0.075 * pT_i / 50``) in blocks flagged ``weight_variations``."""
    names, factors = [""], [jnp.ones_like(jet_pt[:, 0])]
    if "weight_variations" in columns:
        leading = nth_selected(jet_pt, w_jet, 4)
        for i in range(4):
            shift = leading[:, i] * _BTAG_VAR / _BTAG_PT
            names += [f"_btag_var_{i}_up", f"_btag_var_{i}_down"]
            factors += [1.0 + shift, 1.0 - shift]
    return names, jnp.stack(factors, axis=1)


def agc_histograms(
    params: Mapping[str, Any], columns: Mapping[str, Any], hardness: Any, spec: KernelSpec
) -> dict[str, SoftHistogram]:
    """Histograms of one block by key: ``4j1b``/``4j2b``, then ``_btag_var_{i}_{up,down}`` and
    ``_scale_var_{up,down}`` in blocks with weight variations (see :mod:`.agc_ttbar`)."""
    hard = is_hard(hardness)
    widths = dict(spec.widths)

    def column(name: str) -> Any:  # the hard pass computes in the columns' own dtypes
        x = jnp.asarray(columns[name])
        return x if hard else x.astype(_DTYPES[spec.dtype])

    def soft_cut(x: Any, name: str, op: str = ">", mask: Any = None, h: Any = hardness) -> Any:
        return cut(x, params[name], width=widths[name], hardness=h, op=op, mask=mask)

    def jet_selection(h: Any) -> Any:
        w = soft_cut(jet_pt, "jet_pt", mask=jet_pt > 0, h=h)
        return w * soft_cut(column("jet_abs_eta"), "jet_eta", "<", h=h) if spec.jet_eta else w

    lep_pt, jet_pt, btag = column("lep_pt"), column("jet_pt"), column("jet_btag")
    w_jet = jet_selection(hardness)
    tag_ge, tag_gt = soft_cut(btag, "btag", ">="), soft_cut(btag, "btag", ">")
    count = {"hardness": hardness, "method": spec.counting}
    one_lepton = exactly(soft_cut(lep_pt, "lepton_pt", mask=lep_pt > 0), 1, **count)
    base = one_lepton * at_least(w_jet, 4, **count)
    if spec.trijet_table:  # the hard choice at the current cuts, looked up
        m_bjj = _tabulated_mass(columns, jet_selection(HARD), soft_cut(btag, "btag", h=HARD))
    else:
        trijets = Trijets(None, column("trijet_mass"), jnp.asarray(columns["trijet_order"]))
        if spec.trijet_choice == "fixed" and not hard:
            choice = [jet_selection(HARD), soft_cut(btag, "btag", h=HARD)]
            m_bjj = best_trijet_mass(trijets, *map(jax.lax.stop_gradient, choice), hardness=HARD)
        else:
            m_bjj = best_trijet_mass(trijets, w_jet, tag_gt, hardness=hardness)
    regions = {
        "4j1b": (exactly(w_jet * tag_ge, 1, **count), scalar_sum(jet_pt, w_jet)),
        "4j2b": (at_least(w_jet * tag_gt, 2, **count), m_bjj),
    }
    wdt = jnp.float64 if hard else _DTYPES[spec.dtype]
    weight = jnp.asarray(columns["weight"], jnp.float64)
    norm = jnp.max(jnp.abs(weight))
    relative = jnp.where(norm > 0, weight / jnp.where(norm > 0, norm, 1.0), 0.0).astype(wdt)
    names, factors = _btag_factors(columns, jet_pt.astype(wdt), w_jet.astype(wdt))
    fill, scale = (
        (kde_histogram, "bandwidth") if spec.fill == "kde" else (sigmoid_histogram, "width")
    )
    out = {}
    for region, (tagged, x) in regions.items():
        selected = (base * tagged).astype(wdt)
        if spec.observable_window:
            selected = selected * window(
                x, params["obs_low"], params["obs_high"], width=widths["obs_low"], hardness=hardness
            ).astype(wdt)
        h = fill(
            x.astype(wdt),
            BINNING,
            hardness=hardness,
            weights=(relative * selected)[:, None] * factors,
            **{scale: spec.bandwidth},
        )
        sumw, sumw2 = h.sumw.astype(jnp.float64) * norm, h.sumw2.astype(jnp.float64) * norm**2
        for k, suffix in enumerate(names):
            out[region + suffix] = SoftHistogram(
                sumw[k], sumw2[k], h.edges, "observable", _LABELS[region]
            )
        if "weight_variations" in columns:  # a constant factor: scaled nominal sums, no fill
            for direction, f in (("up", 1.0 + _SCALE_VAR), ("down", 1.0 - _SCALE_VAR)):
                out[f"{region}_scale_var_{direction}"] = SoftHistogram(
                    sumw[0] * f, sumw2[0] * f**2, h.edges, "observable", _LABELS[region]
                )
    return out
