r"""The optimisation objective: histograms → model builder → HistFactory → one number.

:class:`Objective` chains, as one differentiable JAX function of the histograms' bin sums
(``sumw``, ``sumw2``, flow bins included):

1. the missing data histograms (the AGC's pseudo-data, or the nominal Asimov sum), then the
   cabinetry-style builder :func:`diffana.stats.build_spec` (rebinning, staterror from ``sumw2``,
   NormPlusShape templates, symmetrisation, luminosity);
2. the yields of the spec in a :class:`~diffana.stats.structure.ModelStructure` built once, from
   the histograms the objective is created with;
3. a statistic of the model on Asimov data (Cowan, Cranmer, Gross, Vitells, EPJC 71 (2011) 1554),
   every nuisance parameter profiled (:data:`OBJECTIVES`):

   - ``sigma_poi``: :math:`\sigma_\mu = \sqrt{[C]_{\mu\mu}}`, :math:`C = 2 H^{-1}` with :math:`H` the
     Hessian of :math:`-2\ln L` at the nominal parameters :math:`\theta_0` on the Asimov data
     :math:`A(\theta_0)`, where :math:`\theta_0` is the best fit (minimised);
   - ``discovery_significance``: :math:`Z_0 = \sqrt{q_0}` on :math:`A(\mu = \mu_{\rm test})`
     (maximised: the loss is :math:`-Z_0`);
   - ``cls``: the median expected :math:`\mathrm{CL_s}` of :math:`\mu_{\rm test}`
     (:math:`\tilde q_\mu`) on the background-only Asimov data (minimised).

Calling an :class:`Objective` on ``{name: SoftHistogram}`` gives the loss as a JAX scalar with a
custom VJP whose forward pass runs one jit-compiled value-and-gradient: it is what
:meth:`diffana.pipeline.engine.Engine.value_and_grad` takes.

Examples:
    >>> import numpy as np
    >>> model = {"General": {"Measurement": "m", "POI": "mu"},
    ...     "Regions": [{"Name": "SR", "RegionPath": "SR", "Binning": [0, 1, 2]}],
    ...     "Samples": [{"Name": "data", "SamplePath": "data", "Data": True},
    ...                 {"Name": "signal", "SamplePath": "sig"}, {"Name": "bkg", "SamplePath": "bkg"}],
    ...     "NormFactors": [{"Name": "mu", "Samples": "signal", "Bounds": [0, 10]}]}
    >>> edges = [0.0, 1.0, 2.0]
    >>> h = {"SR_sig": {"values": [10.0, 20.0], "variances": [1.0, 2.0], "edges": edges},
    ...      "SR_bkg": {"values": [50.0, 50.0], "variances": [5.0, 5.0], "edges": edges}}
    >>> objective = Objective(model, h, pseudodata="nominal")
    >>> round(objective.value(h), 6)  # pyhf (jax): sqrt of [inverse Hessian of -log L]_mu,mu
    0.386047
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from diffana.errors import ConfigError, ModelError, WorkspaceError
from diffana.pipeline.placement import Placement
from diffana.stats import objectives
from diffana.stats.build import build_spec, to_json
from diffana.stats.build_config import (
    ModelConfig,
    Region,
    Sample,
    applies,
    histogram_name,
    parse_config,
)
from diffana.stats.build_histograms import Histogram, agc_pseudodata, as_histogram, rebin
from diffana.stats.fit import parameter_uncertainties
from diffana.stats.likelihood import expected_data
from diffana.stats.structure import ModelStructure, structure_from_spec
from diffana.stats.yields import Yields, yields_from_spec

__all__ = [
    "OBJECTIVES",
    "Entry",
    "Objective",
    "cls_expected",
    "discovery_significance",
    "model_histograms",
    "model_spec",
    "same_layout",
    "sigma_poi",
]

Pseudodata = Literal["agc", "nominal", "none"]


def _nominal_pars(structure: ModelStructure, poi_value: float | None = None) -> Array:
    init = jnp.asarray(structure.suggested_init(), dtype=jnp.float64)
    return init if poi_value is None else init.at[structure.poi_index].set(poi_value)


def sigma_poi(structure: ModelStructure, yields: Yields, poi_test: float = 1.0) -> Array:
    r"""Expected uncertainty on the POI, :math:`\sqrt{2 [H^{-1}]_{\mu\mu}}` on Asimov data.

    The Asimov data of the nominal parameters (POI at its suggested init) are fitted best by those
    parameters, so the profile-likelihood uncertainty is the inverse-Hessian one there
    (``poi_test`` is unused: the model's nominal POI value is used).
    """
    del poi_test
    pars = _nominal_pars(structure)
    sigma, _ = parameter_uncertainties(
        structure, yields, pars, expected_data(structure, yields, pars)
    )
    return sigma[structure.poi_index]


def discovery_significance(
    structure: ModelStructure, yields: Yields, poi_test: float = 1.0
) -> Array:
    r"""Median discovery significance :math:`Z_0 = \sqrt{q_0}` on the Asimov data of ``poi_test``
    (:func:`diffana.stats.objectives.discovery_significance`)."""
    data = objectives.asimov_data(structure, yields, poi_test)
    return objectives.discovery_significance(structure, yields, data).value


def cls_expected(structure: ModelStructure, yields: Yields, poi_test: float = 1.0) -> Array:
    r"""Median expected :math:`\mathrm{CL_s}` of ``poi_test`` (:math:`\tilde q_\mu`, asymptotic):
    the observed CLs of the background-only Asimov data (:func:`diffana.stats.objectives.cls`)."""
    return objectives.cls(structure, yields, None, poi_test).value[0]


#: name -> (statistic of (structure, yields, poi_test), +1 to minimise it or -1 to maximise it)
OBJECTIVES: dict[str, tuple[Callable[[ModelStructure, Yields, float], Array], float]] = {
    "sigma_poi": (sigma_poi, 1.0),
    "discovery_significance": (discovery_significance, -1.0),
    "cls": (cls_expected, 1.0),
}


def model_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The model part of a workspace spec (channels + measurement parameters), as pyhf's Model."""
    return {
        "channels": spec["channels"],
        "parameters": spec["measurements"][0]["config"]["parameters"],
    }


class Entry(NamedTuple):
    """One histogram the model reads: its name, region, sample and variation (``""``: nominal)."""

    name: str
    region: Region
    sample: Sample
    variation: str


def model_histograms(config: ModelConfig) -> list[Entry]:
    """Every histogram the builder reads for ``config`` (data last), in a fixed order.

    Examples:
        >>> cfg = parse_config({"General": {"Measurement": "m", "POI": "mu"},
        ...     "Regions": [{"Name": "SR", "RegionPath": "sr"}],
        ...     "Samples": [{"Name": "data", "SamplePath": "data", "Data": True},
        ...                 {"Name": "sig", "SamplePath": "sig"}],
        ...     "Systematics": [{"Name": "jes", "Type": "NormPlusShape",
        ...         "Up": {"VariationPath": "_jes_up"}, "Down": {"Symmetrize": True}}],
        ...     "NormFactors": [{"Name": "mu", "Samples": "sig"}]})
        >>> [(e.name, e.variation) for e in model_histograms(cfg)]
        [('sr_sig', ''), ('sr_sig_jes_up', '_jes_up'), ('sr_data', '')]
    """
    entries: list[Entry] = []
    for region in config.regions:
        for sample in config.samples:
            if sample.data or not applies(sample.regions, region.name):
                continue
            entries.append(Entry(histogram_name(config, region, sample), region, sample, ""))
            for syst in config.systematics:
                if syst.type != "NormPlusShape" or not (
                    applies(syst.samples, sample.name) and applies(syst.regions, region.name)
                ):
                    continue
                for template in (syst.up, syst.down):
                    if not template.symmetrize:
                        name = histogram_name(config, region, sample, template)
                        label = template.variation_path or template.sample_path or syst.name
                        entries.append(Entry(name, region, sample, label))
    unique = list({e.name: e for e in entries}.values())
    for region in config.regions:
        name = histogram_name(config, region, config.data_sample)
        unique.append(Entry(name, region, config.data_sample, ""))
    return unique


_COMPILED: dict[Any, Callable[..., Any]] = {}  # (objective key, structure, kind) -> jitted function
_DERIVED_TABLES = ("gauss_sigma", "pois_factor", "pois_aux")  # widths the yields set at run time


def same_layout(a: ModelStructure, b: ModelStructure) -> bool:
    """Whether two structures differ at most in constraint widths derived from the yields.

    Such structures give the same likelihood for the same yields (the widths of staterror and
    shapesys constraints follow the yields), so one compiled objective serves both.
    """
    if (a.par_names, a.channel_nbins, a.modifiers, a.poi_index) != (
        b.par_names,
        b.channel_nbins,
        b.modifiers,
        b.poi_index,
    ) or sorted(a.tables) != sorted(b.tables):
        return False
    for key, value in a.tables.items():
        other = b.tables[key]
        if key in _DERIVED_TABLES:
            continue
        if isinstance(value, np.ndarray):
            if value.shape != other.shape or not np.array_equal(value, other):
                return False
        elif value != other:
            return False
    return True


class Objective:
    """A differentiable objective of histograms (see the module docstring).

    Args:
        model: the statistical model as cabinetry's config dict (or a parsed ``ModelConfig``).
        histograms: concrete histograms by name (``SoftHistogram``, ``hist.Hist`` or dicts with
            ``values``/``edges``/``variances``); they fix the edges and the model structure.
        kind: a key of :data:`OBJECTIVES`.
        poi_test: the POI value tested by ``discovery_significance`` and ``cls``.
        pseudodata: how data histograms missing from the inputs are made: ``"agc"`` (the AGC's
            ``(ttbar ME_var + PS_var) / 2 + W+jets``), ``"nominal"`` (the sum of the nominal
            samples), ``"none"`` (they must be given).
        left_out: ``(sample, region)`` pairs the model leaves out (their histograms are still
            read); :meth:`merged` sets them for samples that hard cuts emptied.

    Attributes:
        structure: the model structure all soft evaluations use.
        names: the histograms read, in order; ``entries`` says which region, sample, variation.
        sign: +1 if the statistic is minimised, -1 if maximised (loss = sign x statistic).
    """

    def __init__(
        self,
        model: Mapping[str, Any] | ModelConfig,
        histograms: Mapping[str, Any],
        *,
        kind: str = "sigma_poi",
        poi_test: float = 1.0,
        pseudodata: Pseudodata = "agc",
        left_out: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if kind not in OBJECTIVES:
            msg = f"objective {kind!r} is unknown; choose one of {sorted(OBJECTIVES)}"
            raise ConfigError(msg)
        if pseudodata not in ("agc", "nominal", "none"):
            msg = f"pseudodata must be 'agc', 'nominal' or 'none', got {pseudodata!r}"
            raise ConfigError(msg)
        self.config = model if isinstance(model, ModelConfig) else parse_config(model)
        self.kind, self.poi_test, self.pseudodata = kind, float(poi_test), pseudodata
        self.statistic, self.sign = OBJECTIVES[kind]
        self.entries = model_histograms(self.config)
        mc = [e.name for e in self.entries if not e.sample.data]
        data = [e.name for e in self.entries if e.sample.data]
        self.data_given = all(n in histograms for n in data)
        if not self.data_given and pseudodata == "none":
            msg = f"the data histograms {data} are missing and pseudodata is 'none'; give them"
            raise WorkspaceError(msg)
        self.names = tuple(mc + (data if self.data_given else []))
        missing = [n for n in self.names if n not in histograms]
        if missing:
            msg = (
                f"the model needs histograms that are not there: {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; the processor must name its outputs as "
                "the model's 'histograms' pattern does (or fix the model's paths)"
            )
            raise WorkspaceError(msg)
        self.edges = {n: as_histogram(histograms[n], n).edges for n in self.names}
        # rebin all histograms of a region in one operation, then build with the region's bins
        self._groups: dict[tuple[Any, ...], list[str]] = {}
        region_of = {e.name: e.region for e in self.entries}
        for n in self.names:
            binning = region_of[n].binning
            key = (self.edges[n], binning if binning is not None else self.edges[n])
            self._groups.setdefault(key, []).append(n)
        # The builder leaves ``left_out`` (sample, region) pairs out of the model; their
        # histograms are still read (the AGC pseudo-data needs W+jets wherever it is empty).
        self.left_out = tuple(left_out)
        regions = tuple(r._replace(binning=None) for r in self.config.regions)
        samples = tuple(
            s._replace(
                regions=tuple(
                    r.name
                    for r in regions
                    if applies(s.regions, r.name) and (s.name, r.name) not in self.left_out
                )
            )
            if any(name == s.name for name, _ in self.left_out)
            else s
            for s in self.config.samples
        )
        self._build_config = self.config._replace(regions=regions, samples=samples)
        spec = model_spec(self.spec(histograms))
        self.structure = structure_from_spec(to_json(spec), poi_name=self.config.poi or None)
        self.placement = Placement(self.structure, spec)
        # what the compiled functions depend on: equal keys share them across instances
        self._key = (self.config, tuple(self.edges.items()), self.names, kind, self.poi_test)
        self._key += (pseudodata, self.data_given, self.left_out)
        self._call = self._make_call()
        self._merged: dict[tuple[Any, ...], Objective] = {}

    # ------------------------------------------------------------------ histograms -> spec
    def inputs(self, histograms: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``(sumw, sumw2)`` arrays by name that the objective reads."""
        read = {n: as_histogram(histograms[n], n) for n in self.names}
        sumw = {n: jnp.asarray(h.values, dtype=jnp.float64) for n, h in read.items()}
        sumw2 = {
            n: jnp.asarray(h.values if h.variances is None else h.variances, dtype=jnp.float64)
            for n, h in read.items()
        }
        return sumw, sumw2

    def _histograms(self, sumw: Mapping[str, Any], sumw2: Mapping[str, Any]) -> dict[str, Any]:
        hists: dict[str, Any] = {}
        for (edges, binning), names in self._groups.items():
            both = jnp.stack(
                [jnp.stack([sumw[n] for n in names]), jnp.stack([sumw2[n] for n in names])]
            )
            values, variances = rebin(both, edges, binning)
            hists.update(
                {n: Histogram(values[i], binning, variances[i]) for i, n in enumerate(names)}
            )
        if self.data_given:
            return hists
        if self.pseudodata == "agc":
            regions = [r.path or r.name for r in self.config.regions]
            return {**agc_pseudodata(hists, regions), **hists}
        for region in self.config.regions:
            parts = [
                hists[histogram_name(self.config, region, s)]
                for s in self.config.samples
                if not s.data and applies(s.regions, region.name)
            ]
            values = sum(jnp.asarray(h.values) for h in parts)
            variances = sum(jnp.asarray(h.variances) for h in parts)
            name = histogram_name(self.config, region, self.config.data_sample)
            hists[name] = Histogram(values, parts[0].edges, variances)
        return hists

    def complete(self, histograms: Mapping[str, Any]) -> dict[str, Histogram]:
        """The histograms the model reads in their region's binning (without flow bins), data
        histograms made if missing (see ``pseudodata``)."""
        return self._histograms(*self.inputs(histograms))

    def spec(self, histograms: Mapping[str, Any]) -> dict[str, Any]:
        """The workspace spec (``jnp`` leaves) built from ``histograms``."""
        return build_spec(self._build_config, self.complete(histograms))

    def workspace(self, histograms: Mapping[str, Any]) -> dict[str, Any]:
        """The pyhf JSON workspace (plain floats) built from concrete ``histograms``.

        Samples with no events in a region are left out of it and bins no nominal sample fills
        are merged into a neighbour first (see :meth:`merged`).
        """
        objective, _ = self.merged(histograms)
        return to_json(objective.spec(histograms))

    def merged(self, histograms: Mapping[str, Any]) -> tuple[Objective, list[str]]:
        """This objective, or one adapted to what concrete ``histograms`` hold, and what was
        changed, in words: samples with no events in a region are left out of it, and bins that
        no nominal sample fills are merged into a neighbour.

        Hard cuts can empty a sample in a region (W+jets in 4j2b at tight b-tagging), whose
        normsys factors are then ``0/0``, or a bin (the lowest H_T bin once jets are hard
        enough), whose Poisson term is invalid (``0/0`` in the Hessian, or ``-inf`` with data in
        it). Merging a bin into its upper neighbour (the lower one for the last bin) keeps the
        region's range and any data in it; an empty sample's histograms are still read (the AGC
        pseudo-data adds W+jets). Soft histograms never have such bins or samples; the structure
        of soft evaluations is unchanged.

        Examples:
            >>> model = {"General": {"Measurement": "m", "POI": "mu"},
            ...     "Regions": [{"Name": "SR", "RegionPath": "SR", "Binning": [0, 1, 2, 3]}],
            ...     "Samples": [{"Name": "data", "SamplePath": "data", "Data": True},
            ...                 {"Name": "sig", "SamplePath": "sig"}],
            ...     "NormFactors": [{"Name": "mu", "Samples": "sig"}]}
            >>> h = {"SR_sig": {"values": [0.0, 5.0, 7.0], "edges": [0, 1, 2, 3]}}
            >>> objective, notes = Objective(model, h, pseudodata="nominal").merged(h)
            >>> objective.config.regions[0].binning, notes
            ((0.0, 2.0, 3.0), ['SR: bin [0, 1) is empty in every nominal sample; merged into [1, 2) (now [0, 2))'])
        """
        hists = self.complete(histograms)
        regions, notes, left_out = [], [], list(self.left_out)
        for region in self.config.regions:
            entries = [
                e
                for e in self.entries
                if e.region.name == region.name and not e.sample.data and e.variation == ""
            ]
            nominal = [hists[e.name] for e in entries]
            for e, h in zip(entries, nominal, strict=True):
                pair = (e.sample.name, region.name)
                if pair not in left_out and not np.any(np.asarray(h.values) != 0):
                    left_out.append(pair)
                    notes.append(
                        f"{region.name}: sample {e.sample.name} has no events; left out of the region"
                    )
            edges = list(region.binning or (nominal[0].edges if nominal else ()))
            total = sum(np.asarray(h.values, dtype=float) for h in nominal)
            empty = list(total == 0) if nominal and len(total) == len(edges) - 1 else []
            if not any(empty) or all(empty):
                regions.append(region)
                continue
            i = 0
            while i < len(empty):
                if not empty[i]:
                    i += 1
                    continue
                j = i + 1
                while j < len(empty) and empty[j]:
                    j += 1
                run = (
                    f"bin [{edges[i]:g}, {edges[j]:g}) is"
                    if j == i + 1
                    else f"bins [{edges[i]:g}, {edges[j]:g}) are"
                )
                if j < len(empty):  # into the next bin: drop the edges inside the run and below it
                    into = (edges[i], edges[j + 1])
                    target = f"[{edges[j]:g}, {edges[j + 1]:g})"
                    del edges[i + 1 : j + 1]
                else:  # a run up to the last bin goes into the bin below it
                    into = (edges[i - 1], edges[j])
                    target = f"[{edges[i - 1]:g}, {edges[i]:g})"
                    del edges[i:j]
                del empty[i:j]
                notes.append(
                    f"{region.name}: {run} empty in every nominal sample; merged into {target}"
                    f" (now [{into[0]:g}, {into[1]:g}))"
                )
            regions.append(region._replace(binning=tuple(float(e) for e in edges)))
        if not notes:
            return self, []
        config = self.config._replace(regions=tuple(regions))
        key = (config.regions, tuple(left_out))
        if key not in self._merged:
            try:
                self._merged[key] = Objective(
                    config,
                    histograms,
                    kind=self.kind,
                    poi_test=self.poi_test,
                    pseudodata=self.pseudodata,
                    left_out=tuple(left_out),
                )
            except (ModelError, WorkspaceError, FloatingPointError, ValueError):
                return self, []  # no valid model either way (e.g. a negative normsys): see value()
        return self._merged[key], notes

    # ------------------------------------------------------------------ the statistic
    def _statistic_of(self, structure: ModelStructure, sumw: Any, sumw2: Any) -> Array:
        spec = model_spec(build_spec(self._build_config, self._histograms(sumw, sumw2)))
        if structure == self.structure:
            yields = self.placement(spec)
        else:
            yields = yields_from_spec(structure, spec)
        return self.statistic(structure, yields, self.poi_test)

    def _compiled_fn(self, structure: ModelStructure, kind: str) -> Callable[..., Any]:
        key = (self._key, structure, kind)
        if key not in _COMPILED:

            def loss(sumw: Any, sumw2: Any) -> Array:
                return self.sign * self._statistic_of(structure, sumw, sumw2)

            fn = loss if kind == "value" else jax.value_and_grad(loss, argnums=(0, 1))
            _COMPILED[key] = jax.jit(fn)
        return _COMPILED[key]

    def _make_call(self) -> Callable[[Any, Any], Array]:
        @jax.custom_vjp
        def loss(sumw: Any, sumw2: Any) -> Array:
            return self._compiled_fn(self.structure, "grad")(sumw, sumw2)[0]

        def forward(sumw: Any, sumw2: Any) -> tuple[Array, Any]:
            return self._compiled_fn(self.structure, "grad")(sumw, sumw2)

        def backward(grads: Any, cotangent: Array) -> Any:
            return jax.tree.map(lambda g: g * cotangent, grads)

        loss.defvjp(forward, backward)
        return loss

    def __call__(self, histograms: Mapping[str, Any]) -> Array:
        """The loss (``sign x statistic``) as a differentiable JAX scalar of ``sumw``, ``sumw2``.

        This is what :meth:`diffana.pipeline.engine.Engine.value_and_grad` takes; its forward
        pass runs one compiled value-and-gradient of the whole chain.
        """
        sumw = {n: histograms[n].sumw for n in self.names}
        sumw2 = {n: histograms[n].sumw2 for n in self.names}
        return self._call(sumw, sumw2)

    def loss_and_grad(self, histograms: Mapping[str, Any]) -> tuple[float, Any]:
        """The loss and its gradient in ``(sumw, sumw2)`` by name (one compiled call)."""
        value, grads = self._compiled_fn(self.structure, "grad")(*self.inputs(histograms))
        return float(value), grads

    def value(self, histograms: Mapping[str, Any], *, value_only: bool = False) -> float:
        """The statistic (not the loss) of concrete histograms; ``nan`` if there is no valid model.

        The structure is that of these histograms' own workspace (what a fit of it uses); when it
        has the layout of :attr:`structure` the compiled objective is reused. ``value_only``
        compiles (once) and uses a function without the gradient: faster for many calls.
        """
        merged, _ = self.merged(histograms)
        if merged is not self:
            return merged.value(histograms, value_only=value_only)
        sumw, sumw2 = self.inputs(histograms)
        try:
            spec = model_spec(
                to_json(build_spec(self._build_config, self._histograms(sumw, sumw2)))
            )
            structure = structure_from_spec(spec, poi_name=self.config.poi or None)
        except (ModelError, WorkspaceError, FloatingPointError, ValueError):
            return math.nan  # e.g. an empty sample or a non-finite template
        if same_layout(structure, self.structure):
            structure = self.structure
        if value_only:
            loss = self._compiled_fn(structure, "value")(sumw, sumw2)
        else:
            loss = self._compiled_fn(structure, "grad")(sumw, sumw2)[0]
        value = float(self.sign * loss)
        return value if math.isfinite(value) else math.nan
