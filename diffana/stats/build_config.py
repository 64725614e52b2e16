"""The model-building configuration: cabinetry's config dict, validated into small typed objects.

The configuration has cabinetry's shape (``General``, ``Regions``, ``Samples``, ``Systematics``,
``NormFactors``; see cabinetry's ``schemas/config.json``) so the AGC's ``cabinetry_config.yml`` works
unchanged. Histograms are given, not made from ntuples, so settings that only steer ntuple reading or
template post-processing (``Tree``, ``Weight``, ``Filter``, ``Rebin``, ``Smoothing``) are rejected
rather than silently ignored. Histogram names follow cabinetry's ``InputPath``: the part after the
last ``:`` with ``{RegionPath}``, ``{SamplePath}`` and ``{VariationPath}`` filled in, e.g.
``4j1b_ttbar_ME_var``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from diffana.errors import ConfigError
from diffana.stats._config_reading import REQUIRED, did_you_mean, read, read_list, section

__all__ = [
    "ModelConfig",
    "NormFactor",
    "Region",
    "Sample",
    "Systematic",
    "Template",
    "applies",
    "histogram_name",
    "parse_config",
]

DEFAULT_INPUT_PATH = "{RegionPath}_{SamplePath}{VariationPath}"


class Template(NamedTuple):
    """One side (``Up`` or ``Down``) of a systematic."""

    variation_path: str | None = None
    sample_path: str | None = None
    symmetrize: bool = False
    normalization: float | None = None


class Region(NamedTuple):
    """A channel; ``binning`` (edges) is ``None`` to keep the histograms' own bins."""

    name: str
    path: str | None
    binning: tuple[float, ...] | None
    variable: str | None = None


class Sample(NamedTuple):
    """A sample; ``regions`` is ``None`` for all regions."""

    name: str
    path: str | None
    data: bool = False
    regions: tuple[str, ...] | None = None
    staterror: bool = True


class NormFactor(NamedTuple):
    """A free normalisation (``normfactor``); ``None`` selections mean all samples/regions."""

    name: str
    samples: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    nominal: float | None = None
    bounds: tuple[float, float] | None = None


class Systematic(NamedTuple):
    """A systematic: ``Normalization`` (normsys) or ``NormPlusShape`` (normsys + histosys)."""

    name: str
    type: Literal["Normalization", "NormPlusShape"]
    up: Template
    down: Template
    samples: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    modifier_name: str = ""


class ModelConfig(NamedTuple):
    """The whole validated configuration."""

    measurement: str
    poi: str
    input_path: str
    variation_path: str
    regions: tuple[Region, ...]
    samples: tuple[Sample, ...]
    normfactors: tuple[NormFactor, ...]
    systematics: tuple[Systematic, ...]
    fixed: tuple[tuple[str, float], ...] = ()

    @property
    def data_sample(self) -> Sample:
        """The one sample with ``Data: True``."""
        return next(s for s in self.samples if s.data)


def applies(selection: tuple[str, ...] | None, name: str) -> bool:
    """Whether a ``Samples``/``Regions`` selection (``None`` = everything) contains ``name``."""
    return selection is None or name in selection


def histogram_name(
    config: ModelConfig,
    region: Region,
    sample: Sample,
    template: Template | None = None,
) -> str:
    """The name of the histogram for a region, sample and (optionally) systematic template.

    cabinetry's rule (``templates/collector.py``): ``InputPath`` with ``{RegionPath}``,
    ``{SamplePath}`` (a template's ``SamplePath`` overrides the sample's) and ``{VariationPath}``
    (the template's, else ``General.VariationPath``) filled in; the file part before ``:`` dropped.

    Examples:
        >>> cfg = parse_config({
        ...     "General": {"Measurement": "m", "InputPath": "h.root:{RegionPath}_{SamplePath}{VariationPath}"},
        ...     "Regions": [{"Name": "SR", "RegionPath": "4j2b"}],
        ...     "Samples": [{"Name": "data", "SamplePath": "pseudodata", "Data": True},
        ...                 {"Name": "ttbar", "SamplePath": "ttbar"}],
        ...     "NormFactors": [{"Name": "mu", "Samples": "ttbar"}]})
        >>> histogram_name(cfg, cfg.regions[0], cfg.samples[1], Template(variation_path="_ME_var"))
        '4j2b_ttbar_ME_var'
    """
    sample_path = sample.path
    variation_path = config.variation_path
    if template is not None:
        sample_path = template.sample_path if template.sample_path is not None else sample_path
        if template.variation_path is not None:
            variation_path = template.variation_path
    path = config.input_path.rsplit(":", 1)[-1]
    for key, value, owner in (
        ("RegionPath", region.path, f"region {region.name!r}"),
        ("SamplePath", sample_path, f"sample {sample.name!r}"),
    ):
        if "{" + key + "}" in path:
            if value is None:
                msg = (
                    f"General.InputPath {config.input_path!r} uses {{{key}}} but {owner} has no "
                    f"{key}: add '{key}: ...' to it"
                )
                raise ConfigError(msg)
            path = path.replace("{" + key + "}", value)
    return path.replace("{VariationPath}", variation_path)


def parse_config(config: Mapping[str, Any]) -> ModelConfig:
    """Validate a cabinetry-style configuration dict into a :class:`ModelConfig`.

    Raises:
        ConfigError: for an unknown or unsupported key, a missing required key, a wrong type, a
            duplicate name or a reference to a sample/region/parameter that does not exist; the
            message names the key (e.g. ``Systematics[3].Up.VariationPaht``) and the fix.

    Examples:
        >>> cfg = parse_config({"General": {"Measurement": "m", "POI": "mu"},
        ...     "Regions": [{"Name": "SR", "RegionPath": "sr", "Binning": [0, 1, 2]}],
        ...     "Samples": [{"Name": "data", "SamplePath": "data", "Data": True},
        ...                 {"Name": "sig", "SamplePath": "sig"}],
        ...     "NormFactors": [{"Name": "mu", "Samples": "sig", "Bounds": [0, 10]}]})
        >>> cfg.regions[0].binning, cfg.normfactors[0].samples, cfg.input_path
        ((0.0, 1.0, 2.0), ('sig',), '{RegionPath}_{SamplePath}{VariationPath}')
    """
    config = section(config, "top", "config")
    for key in ("General", "Regions", "Samples", "NormFactors"):
        if key not in config:
            msg = f"config: the required key {key!r} is missing; add it (see cabinetry_config.yml)"
            raise ConfigError(msg)
    general = section(config["General"], "General", "General")

    def each(obj: Mapping[str, Any], key: str, parse: Any, where: str = "") -> tuple[Any, ...]:
        items = read_list(obj, key, where, required=key not in ("Systematics", "Fixed"))
        return tuple(parse(item, f"{where}{key}[{i}]") for i, item in enumerate(items))

    cfg = ModelConfig(
        measurement=read(general, "Measurement", "General", "str", REQUIRED),
        poi=read(general, "POI", "General", "str", ""),
        input_path=read(general, "InputPath", "General", "str", DEFAULT_INPUT_PATH),
        variation_path=read(general, "VariationPath", "General", "str", ""),
        regions=each(config, "Regions", _region),
        samples=each(config, "Samples", _sample),
        normfactors=each(config, "NormFactors", _normfactor),
        systematics=each(config, "Systematics", _systematic),
        fixed=each(general, "Fixed", _fixed, "General."),
    )
    _check_references(cfg)
    return cfg


def _check_references(cfg: ModelConfig) -> None:
    region_names = [r.name for r in cfg.regions]
    sample_names = [s.name for s in cfg.samples]
    for kind, names in (
        ("Regions", region_names),
        ("Samples", sample_names),
        ("NormFactors", [n.name for n in cfg.normfactors]),
        ("Systematics", [s.name for s in cfg.systematics]),
    ):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"{kind}: the names {dupes} occur more than once; every Name must be unique"
            raise ConfigError(msg)
    n_data = sum(s.data for s in cfg.samples)
    if n_data != 1:
        msg = f"Samples: {n_data} samples have 'Data: True'; exactly one data sample is needed"
        raise ConfigError(msg)
    mc_names = [s.name for s in cfg.samples if not s.data]
    selections: list[tuple[str, NormFactor | Systematic]] = [
        *((f"NormFactors[{i}]", n) for i, n in enumerate(cfg.normfactors)),
        *((f"Systematics[{i}]", s) for i, s in enumerate(cfg.systematics)),
    ]
    for where, item in selections:
        _known(item.samples, mc_names, f"{where}.Samples")
        _known(item.regions, region_names, f"{where}.Regions")
    for i, sample in enumerate(cfg.samples):
        _known(sample.regions, region_names, f"Samples[{i}].Regions")
    parameters = [n.name for n in cfg.normfactors] + [s.modifier_name for s in cfg.systematics]
    for i, (name, _) in enumerate(cfg.fixed):
        if name not in [n.name for n in cfg.normfactors] + [s.name for s in cfg.systematics]:
            msg = f"General.Fixed[{i}].Name: {name!r} is not a NormFactor or systematic"
            raise ConfigError(msg + did_you_mean(name, parameters))
    if cfg.poi and cfg.poi not in parameters:
        msg = (
            f"General.POI: {cfg.poi!r} is not a NormFactor or systematic"
            f"{did_you_mean(cfg.poi, parameters)}; name one of {parameters}"
        )
        raise ConfigError(msg)


def _known(selection: tuple[str, ...] | None, known: list[str], where: str) -> None:
    for name in selection or ():
        if name not in known:
            msg = (
                f"{where}: {name!r} is not defined{did_you_mean(name, known)}; choose from {known}"
            )
            raise ConfigError(msg)


def _fixed(obj: Any, where: str) -> tuple[str, float]:
    obj = section(obj, "Fixed", where)
    return read(obj, "Name", where, "str", REQUIRED), read(obj, "Value", where, "number", REQUIRED)


def _region(obj: Any, where: str) -> Region:
    obj = section(obj, "Region", where)
    binning = read(obj, "Binning", where, "numbers")
    if binning is not None and (
        len(binning) < 2 or any(b >= a for a, b in zip(binning[1:], binning[:-1], strict=True))
    ):
        msg = f"{where}.Binning: edges {list(binning)} must be at least two, increasing strictly"
        raise ConfigError(msg)
    return Region(
        name=read(obj, "Name", where, "str", REQUIRED),
        path=read(obj, "RegionPath", where, "str"),
        binning=binning,
        variable=read(obj, "Variable", where, "str"),
    )


def _sample(obj: Any, where: str) -> Sample:
    obj = section(obj, "Sample", where)
    return Sample(
        name=read(obj, "Name", where, "str", REQUIRED),
        path=read(obj, "SamplePath", where, "str"),
        data=read(obj, "Data", where, "bool", False),
        regions=read(obj, "Regions", where, "names"),
        staterror=not read(obj, "DisableStaterror", where, "bool", False),
    )


def _normfactor(obj: Any, where: str) -> NormFactor:
    obj = section(obj, "NormFactor", where)
    bounds = read(obj, "Bounds", where, "numbers")
    if bounds is not None and (len(bounds) != 2 or bounds[0] >= bounds[1]):
        msg = f"{where}.Bounds: expected [low, high] with low < high, got {list(bounds)}"
        raise ConfigError(msg)
    return NormFactor(
        name=read(obj, "Name", where, "str", REQUIRED),
        samples=read(obj, "Samples", where, "names"),
        regions=read(obj, "Regions", where, "names"),
        nominal=read(obj, "Nominal", where, "number"),
        bounds=bounds,
    )


def _template(obj: Any, where: str, kind: str) -> Template:
    obj = section(obj, "Template", where)
    template = Template(
        variation_path=read(obj, "VariationPath", where, "str"),
        sample_path=read(obj, "SamplePath", where, "str"),
        symmetrize=read(obj, "Symmetrize", where, "bool", False),
        normalization=read(obj, "Normalization", where, "number"),
    )
    if kind == "Normalization" and template.normalization is None:
        msg = f"{where}: a 'Normalization' systematic needs 'Normalization: <relative change>'"
        raise ConfigError(msg)
    if kind == "NormPlusShape" and template.normalization is not None:
        msg = (
            f"{where}.Normalization: a 'NormPlusShape' systematic takes its normalisation from "
            "the template histogram; remove it or use 'Type: Normalization'"
        )
        raise ConfigError(msg)
    return template


def _systematic(obj: Any, where: str) -> Systematic:
    obj = section(obj, "Systematic", where)
    name = read(obj, "Name", where, "str", REQUIRED)
    kind = read(obj, "Type", where, "str", REQUIRED)
    if kind not in ("Normalization", "NormPlusShape"):
        msg = f"{where}.Type: {kind!r} is not supported; use 'Normalization' or 'NormPlusShape'"
        raise ConfigError(msg)
    up = _template(read(obj, "Up", where, "any", REQUIRED), f"{where}.Up", kind)
    down = _template(read(obj, "Down", where, "any", REQUIRED), f"{where}.Down", kind)
    if up.symmetrize and down.symmetrize:
        msg = f"{where}: Up and Down of {name!r} cannot both be 'Symmetrize: True'"
        raise ConfigError(msg)
    return Systematic(
        name=name,
        type=kind,
        up=up,
        down=down,
        samples=read(obj, "Samples", where, "names"),
        regions=read(obj, "Regions", where, "names"),
        modifier_name=read(obj, "ModifierName", where, "str", name),
    )
