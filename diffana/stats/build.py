"""Build a pyhf JSON spec from histograms and a cabinetry-style config, differentiably.

:func:`build_spec` does what cabinetry 0.6 does (``templates.collect`` + ``workspace.build``) for
histogram inputs, with every number computed by ``jax.numpy`` so the map histograms -> spec can be
traced and differentiated (the histograms may be soft, i.e. carry gradients of cut parameters).

- **Rebinning** (:func:`~diffana.stats.build_histograms.rebin`): the histograms' bins are summed into the region's ``Binning``,
  whose edges must be a subset of the histograms' edges; bins outside the new range and the
  under/overflow bins are dropped. This is what the AGC's ``h[110j::hist.rebin(2)]`` + cabinetry do.
- **staterror** ``staterror_<region name with ' ' -> '-'>`` per sample with data
  ``sqrt(sum w^2)`` (0 where the variance is not positive, as cabinetry's post-processing does).
- **NormPlusShape** (cabinetry ``normplusshape_modifiers``): ``normsys`` with
  ``hi = sum(up) / sum(nominal)`` and a ``histosys`` with the template normalised to the nominal
  yield, ``hi_data = up / hi``. ``Symmetrize: True`` on one side mirrors the other after
  normalisation: ``lo = 2 - hi``, ``lo_data = 2 nominal - hi_data``.
- **Normalization**: ``normsys`` with ``hi = 1 + Up.Normalization``, ``lo = 1 + Down.Normalization``.
- Modifier order per sample: staterror, normfactors, then systematics in config order.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from diffana.errors import WorkspaceError
from diffana.stats.build_config import (
    ModelConfig,
    Region,
    Sample,
    Systematic,
    Template,
    applies,
    histogram_name,
    parse_config,
)
from diffana.stats.build_histograms import as_histogram, rebin

__all__ = ["build_spec", "to_json"]


def _safe_sqrt(x: Array) -> Array:
    """sqrt(x) for x > 0 and 0 elsewhere, with a finite gradient everywhere."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


class _Templates:
    """Looks up and rebins histograms by name, once each."""

    def __init__(self, config: ModelConfig, histograms: Mapping[str, Any]) -> None:
        self.config = config
        self.histograms = histograms
        self.cache: dict[tuple[str, str], tuple[Array, Array | None]] = {}

    def get(
        self, region: Region, sample: Sample, template: Template | None = None, *, why: str = ""
    ) -> tuple[Array, Array | None]:
        key = histogram_name(self.config, region, sample, template)
        if (key, region.name) not in self.cache:
            if key not in self.histograms:
                close = difflib.get_close_matches(key, [str(k) for k in self.histograms], n=3)
                hint = f"; similar names: {close}" if close else ""
                msg = (
                    f"histogram {key!r} ({why or 'nominal'} of sample {sample.name!r} in region "
                    f"{region.name!r}) is missing{hint}; add it to the histograms or fix the "
                    "config's paths (General.InputPath, RegionPath, SamplePath, VariationPath)"
                )
                raise WorkspaceError(msg)
            hist = as_histogram(self.histograms[key], key)
            try:
                values = rebin(hist.values, hist.edges, region.binning, name=key)
                variances = hist.variances
                if variances is not None:
                    variances = rebin(variances, hist.edges, region.binning, name=key)
            except WorkspaceError as err:
                msg = f"region {region.name!r}: {err}"
                raise WorkspaceError(msg) from None
            self.cache[key, region.name] = (values, variances)
        return self.cache[key, region.name]


def _normplusshape(
    templates: _Templates, region: Region, sample: Sample, systematic: Systematic
) -> list[dict[str, Any]]:
    nominal, _ = templates.get(region, sample)
    total = jnp.sum(nominal)

    def normalised(template: Template, side: str) -> tuple[Array, Array]:
        values, _ = templates.get(region, sample, template, why=f"{systematic.name!r} {side}")
        norm = jnp.sum(values) / total
        return norm, values / norm

    if systematic.down.symmetrize:
        hi, hi_data = normalised(systematic.up, "Up")
        lo, lo_data = 2.0 - hi, 2.0 * nominal - hi_data
    elif systematic.up.symmetrize:
        lo, lo_data = normalised(systematic.down, "Down")
        hi, hi_data = 2.0 - lo, 2.0 * nominal - lo_data
    else:
        hi, hi_data = normalised(systematic.up, "Up")
        lo, lo_data = normalised(systematic.down, "Down")
    name = systematic.modifier_name
    modifiers = [{"name": name, "type": "normsys", "data": {"hi": hi, "lo": lo}}]
    if nominal.shape[-1] > 1:  # a one-bin channel has no shape: cabinetry skips the histosys
        modifiers.append(
            {"name": name, "type": "histosys", "data": {"hi_data": hi_data, "lo_data": lo_data}}
        )
    return modifiers


def _sample_modifiers(
    config: ModelConfig, templates: _Templates, region: Region, sample: Sample
) -> list[dict[str, Any]]:
    modifiers: list[dict[str, Any]] = []
    if sample.staterror:
        _, variances = templates.get(region, sample)
        if variances is None:
            msg = (
                f"histogram {histogram_name(config, region, sample)!r} has no variances, but "
                f"sample {sample.name!r} gets a staterror; give variances (sum of squared "
                "weights) or set 'DisableStaterror: True' on the sample"
            )
            raise WorkspaceError(msg)
        staterror = "staterror_" + region.name.replace(" ", "-")
        modifiers.append({"name": staterror, "type": "staterror", "data": _safe_sqrt(variances)})
    for nf in config.normfactors:
        if applies(nf.regions, region.name) and applies(nf.samples, sample.name):
            modifiers.append({"name": nf.name, "type": "normfactor", "data": None})
    for systematic in config.systematics:
        if not (
            applies(systematic.regions, region.name) and applies(systematic.samples, sample.name)
        ):
            continue
        if systematic.type == "Normalization":
            hi = jnp.asarray(1.0 + systematic.up.normalization)  # type: ignore[operator]
            lo = jnp.asarray(1.0 + systematic.down.normalization)  # type: ignore[operator]
            data = {"hi": hi, "lo": lo}
            modifiers.append({"name": systematic.modifier_name, "type": "normsys", "data": data})
        else:
            modifiers += _normplusshape(templates, region, sample, systematic)
    return modifiers


def _measurements(config: ModelConfig) -> list[dict[str, Any]]:
    fixed = dict(config.fixed)
    parameters: list[dict[str, Any]] = []
    for nf in config.normfactors:
        init = nf.nominal if nf.nominal is not None else fixed.get(nf.name)
        parameter: dict[str, Any] = {"name": nf.name}
        if init is not None:
            parameter["inits"] = [init]
        if nf.bounds is not None:
            parameter["bounds"] = [list(nf.bounds)]
        if nf.name in fixed:
            parameter["fixed"] = True
        parameters.append(parameter)
    for systematic in config.systematics:
        if systematic.name in fixed:
            parameters.append(
                {"name": systematic.modifier_name, "inits": [fixed[systematic.name]], "fixed": True}
            )
    return [{"name": config.measurement, "config": {"parameters": parameters, "poi": config.poi}}]


def build_spec(
    config: Mapping[str, Any] | ModelConfig, histograms: Mapping[str, Any]
) -> dict[str, Any]:
    """Build the pyhf JSON spec (a workspace dict) as cabinetry does, with ``jnp`` leaves.

    Args:
        config: a cabinetry-style config dict (validated with
            :func:`~diffana.stats.build_config.parse_config`) or an already parsed config.
        histograms: histogram name (see :func:`~diffana.stats.build_config.histogram_name`) ->
            histogram (anything :func:`~diffana.stats.build_histograms.as_histogram` reads); values and variances may be numpy
            or JAX arrays, including tracers, so ``jax.grad`` flows from them into the spec.

    Returns:
        ``{"channels", "measurements", "observations", "version"}`` in pyhf's layout, samples
        and modifiers in config order (see the module docstring); yields and modifier data
        are ``jax.Array`` (use :func:`to_json` for plain JSON).

    Raises:
        ConfigError: if the config is invalid.
        WorkspaceError: for a missing histogram (with similar names), a histogram whose edges do
            not contain the region's ``Binning`` edges, or missing variances for a staterror.

    Examples:
        >>> config = {"General": {"Measurement": "meas", "POI": "mu"},
        ...     "Regions": [{"Name": "SR", "RegionPath": "SR", "Binning": [0, 2]}],
        ...     "Samples": [{"Name": "data", "SamplePath": "data", "Data": True},
        ...                 {"Name": "signal", "SamplePath": "sig"}],
        ...     "NormFactors": [{"Name": "mu", "Samples": "signal", "Bounds": [0, 10]}]}
        >>> edges = [0, 1, 2]
        >>> spec = build_spec(config, {
        ...     "SR_data": {"values": [3.0, 4.0], "edges": edges},
        ...     "SR_sig": {"values": [1.0, 2.0], "variances": [0.5, 0.5], "edges": edges}})
        >>> to_json(spec)["channels"][0]["samples"][0]["modifiers"][0]
        {'name': 'staterror_SR', 'type': 'staterror', 'data': [1.0]}
    """
    cfg = config if isinstance(config, ModelConfig) else parse_config(config)
    templates = _Templates(cfg, histograms)
    channels = []
    for region in cfg.regions:
        samples = []
        for sample in cfg.samples:
            if sample.data or not applies(sample.regions, region.name):
                continue
            values, _ = templates.get(region, sample)
            modifiers = _sample_modifiers(cfg, templates, region, sample)
            samples.append({"name": sample.name, "data": values, "modifiers": modifiers})
        channels.append({"name": region.name, "samples": samples})
    observations = [
        {"name": region.name, "data": templates.get(region, cfg.data_sample)[0]}
        for region in cfg.regions
    ]
    return {
        "channels": channels,
        "measurements": _measurements(cfg),
        "observations": observations,
        "version": "1.0.0",
    }


def to_json(spec: Any) -> Any:
    """Turn the array leaves of a spec into plain floats and lists (pyhf-valid JSON).

    Raises:
        WorkspaceError: if a leaf is a tracer (call it outside ``jit``/``grad``).

    Examples:
        >>> to_json({"data": jnp.array([1.0, 2.0]), "hi": jnp.asarray(1.5), "name": "x"})
        {'data': [1.0, 2.0], 'hi': 1.5, 'name': 'x'}
    """
    if isinstance(spec, Mapping):
        return {key: to_json(value) for key, value in spec.items()}
    if isinstance(spec, list | tuple):
        return [to_json(value) for value in spec]
    if isinstance(spec, jax.core.Tracer):
        msg = "to_json got a traced value; call it on concrete arrays, outside jit/grad"
        raise WorkspaceError(msg)
    if isinstance(spec, jax.Array | np.ndarray | np.generic):
        return np.asarray(spec, dtype=float).tolist()
    return spec
