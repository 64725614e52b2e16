"""The AGC CMS ttbar analysis (analysis version 2) as a processor with differentiable cuts.

**Selection.** Exactly one lepton (electron or muon) with ``pt > lepton_pt``, at least four jets with
``pt > jet_pt``; region ``4j1b`` has exactly one jet with ``btagCSVV2 >= btag`` and fills H_T (the
scalar sum of the selected jets' pT), region ``4j2b`` at least two jets with ``btagCSVV2 > btag``
and fills m_bjj (the mass of the trijet with the largest vector-sum pT among the trijets of selected
jets with a jet above ``btag``). The AGC's own ``>=`` / ``>`` are kept. Identification, isolation,
``sip3d``, lepton ``|eta|`` and ``jetId`` requirements are exact (:mod:`.agc_skim`). Optionally jet
``|eta| < jet_eta`` and a window ``obs_low <= observable < obs_high`` are parameters too.

**Soft twin.** Each threshold is a sigmoid cut of width ``Parameter.scale`` (divided by the
hardness); object counts are the Poisson-binomial probabilities of :func:`diffana.pipeline.exactly`
and :func:`~diffana.pipeline.at_least`; the lepton, jet and b-tag requirements multiply; H_T is the
expected sum, m_bjj the soft first-valid choice of :func:`~diffana.pipeline.best_trijet_mass`; the histograms
are binned KDEs (or sigmoid-edge fills) over the AGC's 25 bins of 20 GeV over 50-550 GeV. With
``hardness=HARD`` all of it is the AGC's hard selection and ``hist`` fill, flow bins included.

**Weights and systematics.** An event weighs ``xsec * lumi / nevts`` (``lumi`` 3378 /pb; ``genWeight``
is not used; ``process == "data"`` weighs 1). Nominal datasets also get the jet-pT blocks
``pt_scale_up`` and ``pt_res_up`` and, in their nominal block, the weight variations filled in one
pass as a weight matrix: ``btag_var_{i}_{up,down}`` with weight ``1 ± 0.075 * pT_i / 50`` (``pT_i``
the i-th selected jet, :func:`nth_selected`) and, for ``wjets``, ``scale_var_{up,down}`` (± 2.5 %).
ttbar ``scaleup``/``scaledown``/``ME_var``/``PS_var`` are datasets of their own; the luminosity
uncertainty belongs to the model. Histograms are named as the AGC names them: ``4j1b_ttbar``,
``4j1b_ttbar_ME_var``, ``4j2b_wjets_pt_scale_up``, ``4j2b_ttbar_btag_var_0_up``,
``4j1b_wjets_scale_var_down``.

**Block columns** (events on the first axis, after :meth:`AGCTtbarProcessor.prepare`):
``lep_pt [E, 2]`` float32 (the two leading leptons, enough for "exactly one" at any threshold),
``jet_pt [E, max_jets]`` float32,
``jet_btag [E, max_jets]`` float32, ``trijet_mass [E, C(max_jets, 3)]`` float32 and
``trijet_order`` (int8, the trijets in decreasing pT),
``weight [E]`` float64, ``jet_abs_eta`` with the eta parameter, and the flag
``weight_variations`` (bool) in the blocks that carry weight variations (the nominal blocks of
nominal datasets; they fill all ten variations and :meth:`~AGCTtbarProcessor.output_name` keeps
``scale_var`` for ``wjets`` only, so that every block has one of two column layouts and the kernel
compiles twice per block size, not once per sample). Zeros pad missing objects. Events with
more than ``max_jets`` loose jets lose their softest ones: :meth:`~AGCTtbarProcessor.prepare` counts
them and warns (:class:`ClippedObjectsWarning`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import awkward as ak
import jax.numpy as jnp
import numpy as np

from diffana.errors import ConfigError
from diffana.pipeline import (
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
from diffana.processors.agc_skim import (
    jet_pt_variations,
    pad_objects,
    preselect,
    selected_lepton_pt,
    trijet_columns,
)
from diffana.processors.base import Chunk, ColumnBlock, Parameter, Processor

__all__ = [
    "BINNING",
    "LUMI",
    "OPTIONAL_PARAMETERS",
    "PARAMETERS",
    "AGCTtbarProcessor",
    "ClippedObjectsWarning",
    "nth_selected",
]

LUMI = 3378.0
"""Integrated luminosity of the AGC's CMS 2015 open data, in /pb."""
BINNING = Regular(25, 50.0, 550.0)
"""The AGC's histogram binning (under- and overflow bins are kept)."""
PARAMETERS = (
    Parameter("lepton_pt", 30.0, (20.0, 60.0), 5.0, "GeV", "lepton pT threshold"),
    Parameter("jet_pt", 30.0, (20.0, 60.0), 5.0, "GeV", "jet pT threshold"),
    Parameter("btag", 0.5, (0.2, 0.9), 0.05, "", "CSVv2 b-tag threshold"),
)
OPTIONAL_PARAMETERS = {
    "jet_eta": (Parameter("jet_eta", 2.4, (1.5, 2.4), 0.1, "", "jet |eta| upper limit"),),
    "observable_window": (
        Parameter("obs_low", 50.0, (50.0, 250.0), 10.0, "GeV", "observable lower limit"),
        Parameter("obs_high", 550.0, (350.0, 550.0), 10.0, "GeV", "observable upper limit"),
    ),
}
_LABELS = {"4j1b": "$H_T$ [GeV]", "4j2b": "$m_{bjj}$ [GeV]"}
_BTAG_VAR, _BTAG_PT, _SCALE_VAR = 0.075, 50.0, 0.025
_DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


class ClippedObjectsWarning(UserWarning):
    """Some events had more loose jets than the processor's padded width; the softest were dropped."""


def nth_selected(values: Any, weights: Any, n: int) -> Any:
    """Expected value of the 1st … n-th selected object (0 if there is none), ``[events, n]``.

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


class AGCTtbarProcessor(Processor):
    """The AGC ttbar selection with differentiable lepton pT, jet pT and b-tag thresholds.

    Args:
        jet_eta: add the jet ``|eta|`` limit as a parameter (else fixed at 2.4).
        observable_window: add ``obs_low``/``obs_high``, a window on H_T and m_bjj. At their
            initial values [50, 550) it empties the flow bins.
        max_jets: padded width of the jet axis (trijets: ``C(max_jets, 3)`` per event).
        lumi: integrated luminosity in /pb.
        fill: ``"kde"`` (binned Gaussian KDE) or ``"sigmoid"`` (sigmoid-edge bins).
        bandwidth: KDE bandwidth (or sigmoid-edge width) in GeV at hardness 1.
        dtype: ``"float32"`` (fast) or ``"float64"`` of the soft kernel; sums are float64 either way
            and the hard pass computes as the AGC does.
        counting: ``method`` of :func:`~diffana.pipeline.at_least` / :func:`~diffana.pipeline.exactly`.

    Examples:
        >>> AGCTtbarProcessor(jet_eta=True).parameter_names
        ('lepton_pt', 'jet_pt', 'btag', 'jet_eta')
    """

    name = "agc_ttbar"
    parameters = PARAMETERS

    def __init__(
        self,
        *,
        jet_eta: bool = False,
        observable_window: bool = False,
        max_jets: int = 10,
        lumi: float = LUMI,
        fill: str = "kde",
        bandwidth: float = 10.0,
        dtype: str = "float32",
        counting: str = "poisson_binomial",
    ) -> None:
        if isinstance(max_jets, bool) or not isinstance(max_jets, int) or not 4 <= max_jets <= 16:
            msg = f"max_jets must be an integer from 4 to 16 (C(n, 3) trijets per event), got {max_jets!r}"
            raise ConfigError(msg)
        checks = {"fill": (fill, ("kde", "sigmoid")), "dtype": (dtype, tuple(_DTYPES))}
        checks["counting"] = (counting, ("poisson_binomial", "sigmoid"))
        for option, (value, allowed) in checks.items():
            if value not in allowed:
                msg = f"{option} must be one of {list(allowed)}, got {value!r}"
                raise ConfigError(msg)
        for option, value in {
            "lumi": lumi,
            "bandwidth": bandwidth,
        }.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                msg = f"{option} must be a positive finite number, got {value!r}"
                raise ConfigError(msg)
        self.jet_eta, self.observable_window = bool(jet_eta), bool(observable_window)
        self.max_jets, self.lumi, self.fill = max_jets, float(lumi), fill
        self.bandwidth = float(bandwidth)
        self.dtype, self.counting = dtype, counting
        extra = [
            p for key in OPTIONAL_PARAMETERS if getattr(self, key) for p in OPTIONAL_PARAMETERS[key]
        ]
        self.parameters = (*PARAMETERS, *extra)  # type: ignore[misc]

    def _parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    # ---------------------------------------------------------------- phase 1
    def _dataset(self, meta: Mapping[str, Any]) -> tuple[bool, float]:
        """Whether the dataset is a nominal one (it gets the systematics), and its event weight."""
        missing = [k for k in ("process", "variation", "xsec", "nevts") if k not in meta]
        if meta.get("process") == "data":
            return False, 1.0
        if missing:
            msg = f"dataset {meta.get('dataset', '?')!r}: the fileset metadata lacks {missing}; the AGC processor needs process, variation, xsec (pb) and nevts"
            raise ConfigError(msg)
        xsec, nevts = float(meta["xsec"]), float(meta["nevts"])
        if not (xsec > 0 and nevts > 0):
            msg = f"dataset {meta.get('dataset', '?')!r}: xsec={meta['xsec']!r} and nevts={meta['nevts']!r} must be positive"
            raise ConfigError(msg)
        return meta["variation"] == "nominal", xsec * self.lumi / nevts

    def skim(self, events: Any) -> dict[str, dict[str, Any]]:
        nominal_dataset, weight = self._dataset(events.metadata)
        lep_low, lep_high = self._parameter("lepton_pt").bounds
        eta_max = self._parameter("jet_eta").bounds[1] if self.jet_eta else 2.4
        leptons = selected_lepton_pt(events, lep_low)
        jets = events.Jet
        good = (np.abs(jets.eta) < eta_max) & ((jets.jetId & 4) != 0)  # isTightLeptonVeto
        width = self.max_jets
        out = {}
        for systematic, pt in jet_pt_variations(events, variations=nominal_dataset).items():
            loose = good & (pt > self._parameter("jet_pt").bounds[0])
            keep = preselect(
                leptons,
                loose,
                jets.btagCSVV2,
                lepton_pt_max=lep_high,
                btag_min=self._parameter("btag").bounds[0],
            )
            n_loose = ak.sum(loose, axis=1)[keep]
            columns = {
                "lep_pt": pad_objects(leptons[keep], 2, np.float32),
                "jet_pt": pad_objects(pt[loose][keep], width, np.float32),
                "jet_btag": pad_objects(jets.btagCSVV2[loose][keep], width, np.float32),
                **{
                    f"jet_{k}": pad_objects(jets[k][loose][keep], width, np.float32)
                    for k in ("eta", "phi", "mass")
                },
                "jets_clipped": ak.where(n_loose > width, n_loose - width, 0),
                "weight": ak.full_like(n_loose, weight, dtype=np.float64),
            }
            if systematic == "nominal" and nominal_dataset:
                columns["weight_variations"] = ak.full_like(n_loose, True, dtype=np.bool_)
            out[systematic] = columns
        return out

    def prepare(self, block: ColumnBlock, systematic: str) -> ColumnBlock:
        """Trijet kinematics once per block; count (and warn about) clipped events."""
        columns = dict(block.columns)
        clipped = int(np.count_nonzero(columns.pop("jets_clipped")))
        if clipped:
            warnings.warn(
                f"{clipped} of {block.num_events} events of block {systematic!r} have more than "
                f"max_jets={self.max_jets} jets above the lower jet-pT bound; their softest jets "
                "were dropped. Raise max_jets (AGCTtbarProcessor(max_jets=...)) to keep them.",
                ClippedObjectsWarning,
                stacklevel=2,
            )
        columns.update(trijet_columns(columns))
        eta = columns.pop("jet_eta")
        del columns["jet_phi"], columns["jet_mass"]
        if self.jet_eta:
            columns["jet_abs_eta"] = np.abs(eta)
        return ColumnBlock(columns)

    # ---------------------------------------------------------------- phase 2
    def histograms(
        self, params: Mapping[str, Any], block: ColumnBlock, *, hardness: Any
    ) -> dict[str, SoftHistogram]:
        hard = is_hard(hardness)
        c = block.columns

        def column(name: str) -> Any:  # the hard pass computes in the columns' own dtypes
            x = jnp.asarray(c[name])
            return x if hard else x.astype(_DTYPES[self.dtype])

        def soft_cut(x: Any, name: str, op: str = ">", mask: Any = None) -> Any:
            p = self._parameter(name)
            return cut(x, params[name], width=p.scale, hardness=hardness, op=op, mask=mask)

        lep_pt, jet_pt, btag = column("lep_pt"), column("jet_pt"), column("jet_btag")
        w_jet = soft_cut(jet_pt, "jet_pt", mask=jet_pt > 0)
        if self.jet_eta:
            w_jet = w_jet * soft_cut(column("jet_abs_eta"), "jet_eta", op="<")
        tag_ge, tag_gt = soft_cut(btag, "btag", ">="), soft_cut(btag, "btag", ">")
        count = {"hardness": hardness, "method": self.counting}
        base = exactly(soft_cut(lep_pt, "lepton_pt", mask=lep_pt > 0), 1, **count) * at_least(
            w_jet, 4, **count
        )
        trijets = Trijets(None, column("trijet_mass"), jnp.asarray(c["trijet_order"]))  # pt: unused
        regions = {
            "4j1b": (exactly(w_jet * tag_ge, 1, **count), scalar_sum(jet_pt, w_jet)),
            "4j2b": (
                at_least(w_jet * tag_gt, 2, **count),
                best_trijet_mass(trijets, w_jet, tag_gt, hardness=hardness),
            ),
        }
        wdt = jnp.float64 if hard else _DTYPES[self.dtype]
        weight = jnp.asarray(c["weight"], jnp.float64)
        norm = jnp.max(jnp.abs(weight))
        relative = jnp.where(norm > 0, weight / jnp.where(norm > 0, norm, 1.0), 0.0).astype(wdt)
        names, factors = self._weight_variations(c, jet_pt.astype(wdt), w_jet.astype(wdt))
        fill, scale = (
            (kde_histogram, "bandwidth") if self.fill == "kde" else (sigmoid_histogram, "width")
        )
        out = {}
        for region, (tagged, x) in regions.items():
            selected = (base * tagged).astype(wdt)
            if self.observable_window:
                selected = selected * window(
                    x,
                    params["obs_low"],
                    params["obs_high"],
                    width=self._parameter("obs_low").scale,
                    hardness=hardness,
                ).astype(wdt)
            h = fill(
                x.astype(wdt),
                BINNING,
                hardness=hardness,
                **{scale: self.bandwidth},
                weights=(relative * selected)[:, None] * factors,
            )
            sumw = h.sumw.astype(jnp.float64) * norm
            sumw2 = h.sumw2.astype(jnp.float64) * norm**2
            for k, suffix in enumerate(names):
                out[region + suffix] = SoftHistogram(
                    sumw[k], sumw2[k], h.edges, "observable", _LABELS[region]
                )
        return out

    @staticmethod
    def _weight_variations(
        columns: Mapping[str, Any], jet_pt: Any, w_jet: Any
    ) -> tuple[list[str], Any]:
        """Key suffixes and the ``[events, variations]`` factors of the weight matrix."""
        ones = jnp.ones_like(jet_pt[:, 0])
        names, factors = [""], [ones]
        if "weight_variations" in columns:
            leading = nth_selected(jet_pt, w_jet, 4)
            for i in range(4):
                shift = leading[:, i] * _BTAG_VAR / _BTAG_PT
                names += [f"_btag_var_{i}_up", f"_btag_var_{i}_down"]
                factors += [1.0 + shift, 1.0 - shift]
            names += ["_scale_var_up", "_scale_var_down"]
            factors += [ones * (1.0 + _SCALE_VAR), ones * (1.0 - _SCALE_VAR)]
        return names, jnp.stack(factors, axis=1)

    def output_name(self, key: str, chunk: Chunk, systematic: str) -> str | None:
        """The AGC's name: ``REGION_PROCESS``, then ``_VARIATION`` for anything but nominal.

        ``scale_var`` (filled in every block with weight variations) is kept for ``wjets`` only.
        """
        region, _, weight_variation = key.partition("_")
        process, variation = (
            chunk.metadata.get("process", "data"),
            chunk.metadata.get("variation", "nominal"),
        )
        if systematic != "nominal":
            suffix = systematic if variation == "nominal" and not weight_variation else None
        elif variation != "nominal":
            suffix = variation if not weight_variation else None
        elif weight_variation.startswith("scale_var") and process != "wjets":
            suffix = None
        else:
            suffix = weight_variation
        if suffix is None:
            return None
        return f"{region}_{process}" + (f"_{suffix}" if suffix else "")
