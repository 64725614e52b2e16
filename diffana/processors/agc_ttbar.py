"""The AGC CMS ttbar analysis (analysis version 2) as a processor with differentiable cuts.

**Selection.** Exactly one lepton (electron or muon) with ``pt > lepton_pt``, at least four jets with
``pt > jet_pt``; region ``4j1b`` has exactly one jet with ``btagCSVV2 >= btag`` and fills H_T (the
scalar sum of the selected jets' pT), region ``4j2b`` at least two jets with ``btagCSVV2 > btag``
and fills m_bjj (the mass of the trijet with the largest vector-sum pT among the trijets of selected
jets with a jet above ``btag``). The AGC's own ``>=`` / ``>`` are kept. Identification, isolation,
``sip3d``, lepton ``|eta|`` and ``jetId`` requirements are exact (:mod:`.agc_skim`). Optionally jet
``|eta| < jet_eta`` and a window ``obs_low <= observable < obs_high`` are parameters too.

**Soft twin** (:mod:`.agc_kernel`). Each threshold is a sigmoid cut of width ``Parameter.scale``
(divided by the hardness); object counts are the Poisson-binomial probabilities of
:func:`diffana.pipeline.exactly` and :func:`~diffana.pipeline.at_least`; the lepton, jet and b-tag
requirements multiply; H_T is the expected sum; the m_bjj trijet is chosen by the hard selection at
the current cuts (or softly, ``trijet_choice="soft"``); the histograms are binned KDEs (or
sigmoid-edge fills) over the AGC's 25 bins of 20 GeV over 50-550 GeV. With ``hardness=HARD`` all of
it is the AGC's hard selection and ``hist`` fill, flow bins included.

**Weights and systematics.** An event weighs ``xsec * lumi / nevts`` (``lumi`` 3378 /pb;
``genWeight`` is not used; ``process == "data"`` weighs 1). Nominal datasets also get the jet-pT
blocks ``pt_scale_up`` and ``pt_res_up`` (:mod:`.agc_skim`) and, in their nominal block, the weight
variations in the same pass: ``btag_var_{i}_{up,down}`` with weight ``1 +- 0.075 * pT_i / 50``
(``pT_i`` the i-th selected jet) as columns of a weight matrix, and ``scale_var_{up,down}``
(+- 2.5 %, a constant factor: the nominal sums scaled), named for ``wjets`` only. ttbar
``scaleup``/``scaledown``/``ME_var``/``PS_var`` are datasets of their own; the luminosity
uncertainty belongs to the model. Histograms are named as the AGC names them: ``4j1b_ttbar``,
``4j1b_ttbar_ME_var``, ``4j2b_wjets_pt_scale_up``, ``4j2b_ttbar_btag_var_0_up``,
``4j1b_wjets_scale_var_down``.

**Block columns** (events on the first axis, after :meth:`AGCTtbarProcessor.prepare`):
``lep_pt [E, 2]`` float32 (the two leading leptons, enough for "exactly one" at any threshold),
``jet_pt``, ``jet_btag [E, max_jets]`` float32 (loose jets by decreasing pT), ``weight [E]``
float64, the flag ``weight_variations`` (bool) in the nominal blocks of nominal datasets, and for
m_bjj ``trijet_table [E, max_jets - 3, max_jets - 1]`` float32 (the AGC's trijet choice tabulated
by the numbers of selected and b-tagged jets, :func:`.agc_skim.trijet_columns`) or, with
``jet_eta`` or ``trijet_choice="soft"``, ``trijet_mass`` and ``trijet_order [E, C(max_jets, 3)]``
plus ``jet_abs_eta``. Every block has one of two layouts, so the kernel compiles twice per block
length, whatever the samples. Zeros pad missing objects. Events with more than ``max_jets`` loose
jets (above the lower jet-pT bound) lose their softest ones: ``prepare`` counts them and warns
(:class:`ClippedObjectsWarning`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from diffana.errors import ConfigError
from diffana.pipeline import SoftHistogram
from diffana.processors.agc_kernel import BINNING, KernelSpec, agc_histograms
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
]

LUMI = 3378.0
"""Integrated luminosity of the AGC's CMS 2015 open data, in /pb."""
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


class ClippedObjectsWarning(UserWarning):
    """Some events had more loose jets than the processor's padded width; the softest were dropped."""


class AGCTtbarProcessor(Processor):
    """The AGC ttbar selection with differentiable lepton pT, jet pT and b-tag thresholds.

    Args:
        jet_eta: add the jet ``|eta|`` limit as a parameter (else fixed at 2.4).
        observable_window: add ``obs_low``/``obs_high``, a window on H_T and m_bjj. At their
            initial values [50, 550) it empties the flow bins.
        max_jets: padded width of the jet axis; 12 clips none of the test data's events (10 clips
            about 0.5 % of the synthetic ttbar ``ME_var`` events and runs faster).
        lumi: integrated luminosity in /pb.
        fill: ``"kde"`` (binned Gaussian KDE) or ``"sigmoid"`` (sigmoid-edge bins).
        bandwidth: KDE bandwidth (or sigmoid-edge width) in GeV at hardness 1.
        dtype: ``"float32"`` (fast) or ``"float64"`` of the soft kernel; sums are float64 either way
            and the hard pass computes as the AGC does.
        counting: ``method`` of :func:`~diffana.pipeline.at_least` / :func:`~diffana.pipeline.exactly`.
        trijet_choice: ``"fixed"``: the 4j2b trijet is chosen by the hard selection at the current
            cuts, tabulated at skim time (the mass is exact, the gradient flows through the event
            weights; with ``jet_eta`` the trijets are scanned instead); ``"soft"``: the soft
            first-valid choice of :func:`~diffana.pipeline.best_trijet_mass` (its gradient also
            sees the choice switch, at about 20 times the cost of the forward pass).

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
        max_jets: int = 12,
        lumi: float = LUMI,
        fill: str = "kde",
        bandwidth: float = 10.0,
        dtype: str = "float32",
        counting: str = "poisson_binomial",
        trijet_choice: str = "fixed",
    ) -> None:
        if isinstance(max_jets, bool) or not isinstance(max_jets, int) or not 4 <= max_jets <= 16:
            msg = f"max_jets must be an integer from 4 to 16 (C(n, 3) trijets per event), got {max_jets!r}"
            raise ConfigError(msg)
        choices = {
            "fill": (fill, ("kde", "sigmoid")),
            "dtype": (dtype, ("float32", "float64")),
            "counting": (counting, ("poisson_binomial", "sigmoid")),
            "trijet_choice": (trijet_choice, ("fixed", "soft")),
        }
        for option, (value, allowed) in choices.items():
            if value not in allowed:
                msg = f"{option} must be one of {list(allowed)}, got {value!r}"
                raise ConfigError(msg)
        for option, value in (("lumi", lumi), ("bandwidth", bandwidth)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                msg = f"{option} must be a positive finite number, got {value!r}"
                raise ConfigError(msg)
        self.jet_eta, self.observable_window = bool(jet_eta), bool(observable_window)
        self.max_jets, self.lumi = max_jets, float(lumi)
        extra = [
            p for key in OPTIONAL_PARAMETERS if getattr(self, key) for p in OPTIONAL_PARAMETERS[key]
        ]
        self.parameters = (*PARAMETERS, *extra)  # type: ignore[misc]
        self.spec = KernelSpec(
            widths=tuple((p.name, p.scale) for p in self.parameters),
            jet_eta=self.jet_eta,
            observable_window=self.observable_window,
            fill=fill,
            bandwidth=float(bandwidth),
            dtype=dtype,
            counting=counting,
            trijet_choice=trijet_choice,
            trijet_table=trijet_choice == "fixed" and not self.jet_eta,
        )

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
            # loose jets by decreasing pT (NanoAOD's order already; the smeared pT need it), so the
            # selected jets are always the first ones and the softest are the ones clipped
            by_pt = ak.argsort(pt[loose][keep], axis=1, ascending=False, stable=True)

            def jet_column(
                values: Any, by_pt: Any = by_pt, keep: Any = keep, loose: Any = loose
            ) -> Any:
                return pad_objects(values[loose][keep][by_pt], width, np.float32)

            columns = {
                "lep_pt": pad_objects(leptons[keep], 2, np.float32),
                "jet_pt": jet_column(pt),
                "jet_btag": jet_column(jets.btagCSVV2),
                **{f"jet_{k}": jet_column(jets[k]) for k in ("eta", "phi", "mass")},
                "jets_clipped": ak.where(n_loose > width, n_loose - width, 0),
                "weight": ak.full_like(n_loose, weight, dtype=np.float64),
            }
            if systematic == "nominal" and nominal_dataset:
                columns["weight_variations"] = ak.full_like(n_loose, True, dtype=np.bool_)
            out[systematic] = columns
        return out

    def prepare(self, block: ColumnBlock, systematic: str) -> ColumnBlock:
        """Trijet kinematics once per block; count (and warn about) clipped events.

        Padding rows (weight 0, see the module docstring of :mod:`diffana.processors.base`) are
        not counted.
        """
        columns = dict(block.columns)
        real = np.asarray(columns["weight"]) != 0
        clipped = int(np.count_nonzero(np.asarray(columns.pop("jets_clipped"))[real]))
        if clipped:
            warnings.warn(
                f"{clipped} of {int(real.sum())} events of block {systematic!r} have more than "
                f"max_jets={self.max_jets} jets above the lower jet-pT bound; their softest jets "
                "were dropped. Raise max_jets (AGCTtbarProcessor(max_jets=...)) to keep them.",
                ClippedObjectsWarning,
                stacklevel=2,
            )
        columns.update(trijet_columns(columns, table=self.spec.trijet_table))
        eta = columns.pop("jet_eta")
        del columns["jet_phi"], columns["jet_mass"]
        if self.jet_eta:
            columns["jet_abs_eta"] = np.abs(eta)
        return ColumnBlock(columns)

    # ---------------------------------------------------------------- phase 2
    def histograms(
        self, params: Mapping[str, Any], block: ColumnBlock, *, hardness: Any
    ) -> dict[str, SoftHistogram]:
        return agc_histograms(params, block.columns, hardness, self.spec)

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
