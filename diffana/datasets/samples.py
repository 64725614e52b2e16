"""The samples of the built-in AGC-like dataset: cross-sections, sizes and physics knobs.

Sample names, processes, variations and cross-sections are the AGC's (CMS ttbar analysis, version
2); the integrated luminosity is 3378 /pb. The physics knobs of each sample were calibrated so that
the AGC selection of the synthetic events, weighted by ``xsec * LUMI / nevts``, gives yields and
H_T / m_bjj shapes close to the AGC's published histograms of the real CMS open data
(``benchmarks/generate.py`` prints the comparison).

Sizes: a sample generates ``size * --events-per-sample`` events. The real samples' sizes (276 M
ttbar, 434 M W+jets, 2-3 M single top s-channel and tW) would leave the rare processes with a
handful of selected events, so sizes follow selection efficiencies instead: every process gets a
few hundred (s-channel, W+jets in 4j2b) to tens of thousands (ttbar) of selected events.

Pseudo-data is not a sample: as in the AGC it is built at histogram level from the samples,
``(ttbar__ME_var + ttbar__PS_var) / 2 + wjets__nominal`` (:data:`PSEUDODATA`).

Examples:
    >>> SAMPLES["ttbar__nominal"].xsec
    729.84
    >>> sorted({s.process for s in SAMPLES.values()})
    ['single_top_s_chan', 'single_top_tW', 'single_top_t_chan', 'ttbar', 'wjets']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from diffana.datasets.detector import DETECTOR, Detector

__all__ = ["LUMI", "PSEUDODATA", "SAMPLES", "JetSource", "Physics", "Sample"]

#: integrated luminosity of the AGC's CMS 2015 open data, in /pb
LUMI = 3378.0

#: pseudo-data as the AGC builds it: weights of the nominal histograms of these datasets
PSEUDODATA = {"ttbar__ME_var": 0.5, "ttbar__PS_var": 0.5, "wjets__nominal": 1.0}


@dataclass(frozen=True)
class JetSource:
    """Jets drawn independently of each other: extra radiation or pile-up.

    The number of jets above 15 GeV within ``|eta| < 4.7`` is negative binomial with the given mean
    and shape (shape -> infinity is Poisson, shape 1 the geometric "staircase" scaling of W+jets);
    pT follows a Lomax spectrum above 15 GeV, eta a logistic profile; a jet is b or c with the given
    probabilities, light otherwise.
    """

    mean: float
    shape: float
    pt_scale: float
    pt_alpha: float
    eta_width: float
    frac_b: float = 0.0
    frac_c: float = 0.0


#: pile-up jets, common to every sample: soft, spread in eta, light
PILEUP = JetSource(mean=0.8, shape=math.inf, pt_scale=4.0, pt_alpha=3.0, eta_width=1.6)
#: soft jets from the parton shower and the underlying event (15-30 GeV)
SOFT = JetSource(mean=1.0, shape=math.inf, pt_scale=6.0, pt_alpha=3.0, eta_width=1.6)


@dataclass(frozen=True)
class Physics:
    """The knobs of one sample's physics; see :mod:`diffana.datasets.processes`."""

    generator: str
    radiation: JetSource
    top_pt_mean: float = 100.0
    top_pt_shape: float = 2.2
    top_y_width: float = 1.0
    recoil_pt_mean: float = 60.0
    extra_b: float = 0.0
    extra_b_pt_scale: float = 15.0
    extra_b_eta_width: float = 1.5
    nonprompt_rate: float = 0.3
    fsr: float = 0.3
    b_response: float = 0.95
    btag_b_power: float = 1.0
    btag_b_lost: float = 0.0
    activity: float = 1.2
    soft: JetSource = SOFT
    pileup: JetSource = PILEUP
    detector: Detector = DETECTOR

    @property
    def jet_sources(self) -> tuple[JetSource, JetSource, JetSource]:
        """The independently drawn jets: extra radiation, soft jets, pile-up."""
        return (self.radiation, self.soft, self.pileup)


@dataclass(frozen=True)
class Sample:
    """One dataset of the fileset: ``PROCESS__VARIATION``, its cross-section (pb) and its size
    (generated events per ``--events-per-sample``)."""

    process: str
    variation: str
    xsec: float
    size: float
    physics: Physics = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.process}__{self.variation}"

    def events(self, events_per_sample: int) -> int:
        """Generated events of this sample when ``--events-per-sample`` is ``events_per_sample``."""
        return max(1, round(self.size * events_per_sample))


_TTBAR = Physics(
    generator="ttbar",
    radiation=JetSource(
        mean=1.4, shape=6.0, pt_scale=45.0, pt_alpha=2.5, eta_width=1.1, frac_b=0.02, frac_c=0.05
    ),
    top_pt_mean=150.0,
    top_pt_shape=2.15,
    top_y_width=1.37,
    fsr=0.25,
    nonprompt_rate=0.6,
)

_TTBAR_VARIATIONS = {
    "nominal": _TTBAR,
    # renormalisation/factorisation scales: top pT, amount of radiation, b fragmentation
    "scaledown": replace(
        _TTBAR, top_pt_mean=138.0, radiation=replace(_TTBAR.radiation, mean=1.33), btag_b_power=1.05
    ),
    "scaleup": replace(
        _TTBAR, top_pt_mean=155.0, radiation=replace(_TTBAR.radiation, mean=1.43), btag_b_power=0.97
    ),
    # another matrix-element generator: harder tops, more and harder extra jets
    "ME_var": replace(
        _TTBAR,
        top_pt_mean=180.0,
        soft=replace(SOFT, mean=6.0, pt_scale=8.0),
        activity=1.0,
        btag_b_power=0.88,
        btag_b_lost=0.035,
        nonprompt_rate=2.5,
    ),
    # another parton shower: more final-state radiation, softer extra jets, b fragmentation
    "PS_var": replace(
        _TTBAR,
        fsr=0.42,
        radiation=replace(_TTBAR.radiation, mean=1.5, pt_alpha=2.85),
        btag_b_power=1.07,
        nonprompt_rate=0.8,
    ),
}

# hard, rare extra jets: single top reaches four jets only with them
_SINGLE_TOP_RADIATION = JetSource(
    mean=0.17, shape=4.0, pt_scale=80.0, pt_alpha=2.2, eta_width=1.3, frac_b=0.02, frac_c=0.05
)
_TOP = {"top_pt_shape": 2.15, "top_y_width": 1.37, "fsr": 0.25}

_SAMPLES = [
    *(
        Sample("ttbar", var, 729.84, 1.0 if var == "nominal" else 0.5, physics)
        for var, physics in _TTBAR_VARIATIONS.items()
    ),
    Sample(
        "single_top_s_chan",
        "nominal",
        3.2944,
        1.0,
        Physics(
            generator="single_top_s",
            radiation=replace(_SINGLE_TOP_RADIATION, mean=0.4),
            top_pt_mean=160.0,
            recoil_pt_mean=45.0,
            extra_b_eta_width=2.5,
            nonprompt_rate=0.4,
            **_TOP,
        ),
    ),
    Sample(
        "single_top_t_chan",
        "nominal",
        (36.993 + 22.175) / 0.252,
        2.0,
        Physics(
            generator="single_top_t",
            radiation=_SINGLE_TOP_RADIATION,
            top_pt_mean=130.0,
            recoil_pt_mean=80.0,
            extra_b=0.85,
            extra_b_pt_scale=40.0,
            extra_b_eta_width=1.2,
            nonprompt_rate=0.3,
            **_TOP,
        ),
    ),
    Sample(
        "single_top_tW",
        "nominal",
        75.842,
        0.3,
        Physics(
            generator="tW",
            radiation=replace(_TTBAR.radiation, mean=1.0),
            top_pt_mean=130.0,
            extra_b=0.75,
            extra_b_pt_scale=70.0,
            extra_b_eta_width=1.2,
            nonprompt_rate=0.5,
            **_TOP,
        ),
    ),
    Sample(
        "wjets",
        "nominal",
        61457 * 0.252,
        10.0,
        Physics(
            generator="wjets",
            radiation=JetSource(
                mean=0.62,
                shape=1.0,
                pt_scale=55.0,
                pt_alpha=2.05,
                eta_width=1.4,
                frac_b=0.06,
                frac_c=0.14,
            ),
            recoil_pt_mean=70.0,
            nonprompt_rate=0.1,
            fsr=0.0,
        ),
    ),
]

#: every sample of the dataset by dataset name, in a fixed order
SAMPLES: dict[str, Sample] = {s.name: s for s in _SAMPLES}
