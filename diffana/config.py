"""The workflow file (YAML): what to read, which processor, where to run, what to optimise.

A workflow file has these sections (every key is checked; an unknown key, a wrong type or a
missing file is a :class:`~diffana.errors.ConfigError` naming the file, the dotted field and the
fix). ``workflows/agc_ttbar.yaml`` is the complete example.

- ``dataset``: ``kind: synthetic`` (the built-in AGC-like dataset, made once into ``folder`` and
  reused) or ``kind: fileset`` (``path`` of a coffea-format fileset JSON).
- ``processor``: ``name`` and per-parameter overrides ``{init, bounds, scale, optimise}``.
- ``cluster``: the engine's cluster (:data:`diffana.pipeline.cluster.ClusterConfig`, with ``kind``).
- ``engine``: chunk size, block cache, skipping of bad files, retries, gradient mode.
- ``model``: the statistical model in cabinetry's terms, written in this file's style
  (:class:`ModelSpec`; :meth:`ModelSpec.to_cabinetry` gives cabinetry's dict).
- ``objective``: ``sigma_poi`` (default), ``discovery_significance`` or ``cls``.
- ``optimizer``: optax optimiser, learning rate, steps, sharpness schedule, early stopping.
- ``scan``: the grid of ``diffana scan``; ``outputs``: the result folder and plots.

Relative paths are taken from the current folder, as for every command-line tool.

Examples:
    >>> wf = parse_workflow({"model": {"measurement": "m", "poi": "mu",
    ...     "regions": [{"name": "SR", "path": "sr", "binning": [0, 1, 2]}],
    ...     "samples": [{"name": "data", "path": "data", "data": True},
    ...                 {"name": "sig", "path": "sig"}],
    ...     "norm_factors": [{"name": "mu", "samples": ["sig"], "bounds": [0, 10]}]}})
    >>> wf.objective.kind, wf.optimizer.name, wf.cluster.kind
    ('sigma_poi', 'adam', 'local')
    >>> parse_workflow({"optimiser": {}}, "w.yaml")
    Traceback (most recent call last):
    ...
    diffana.errors.ConfigError: w.yaml: model: Field required; add it
    w.yaml: optimiser: unknown key (did you mean 'optimizer'?); remove it or use one of [...]
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, FilePath, ValidationError, model_validator

from diffana.errors import ConfigError
from diffana.pipeline.cluster import ClusterConfig, LocalClusterConfig

__all__ = [
    "DEFAULT_WORKFLOW",
    "DatasetSpec",
    "EarlyStopping",
    "EngineSpec",
    "FilesetDataset",
    "HardnessSchedule",
    "ModelSpec",
    "ObjectiveSpec",
    "OptimizerSpec",
    "OutputsSpec",
    "ParameterSpec",
    "PolishSpec",
    "ProcessorSpec",
    "ScanSpec",
    "SyntheticDataset",
    "Workflow",
    "default_workflow_path",
    "load_workflow",
    "parse_workflow",
]

DEFAULT_WORKFLOW = Path("workflows") / "agc_ttbar.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------ dataset
class SyntheticDataset(_Model):
    """The built-in AGC-like dataset (``diffana generate``), made into ``folder`` if not there."""

    kind: Literal["synthetic"]
    folder: Path = Path("data") / "agc_synthetic"
    events_per_sample: int = Field(100_000, gt=0)
    files_per_sample: int = Field(2, gt=0)
    seed: int = Field(2015, ge=0)
    jobs: int = Field(2, ge=1)
    compression: Literal["lz4", "zlib", "zstd", "none"] = "lz4"


class FilesetDataset(_Model):
    """A coffea-format fileset JSON (local paths, ``root://`` or ``https://`` URLs), or the AGC's
    file list ``nanoaod_inputs.json``."""

    kind: Literal["fileset"]
    path: FilePath


DatasetSpec = Annotated[SyntheticDataset | FilesetDataset, Field(discriminator="kind")]


# ------------------------------------------------------------------------------------ processor
class ParameterSpec(_Model):
    """Overrides of one processor parameter; ``optimise: false`` holds it at ``init``."""

    init: float | None = None
    bounds: tuple[float, float] | None = None
    scale: float | None = Field(None, gt=0)
    optimise: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> ParameterSpec:
        if self.bounds is not None and not self.bounds[0] < self.bounds[1]:
            msg = f"bounds must be [low, high] with low < high, got {list(self.bounds)}"
            raise ValueError(msg)
        return self


class ProcessorSpec(_Model):
    """The processor by registry name (or ``module:Class``), its constructor ``options`` and
    overrides of its parameters by parameter name (bounds must stay inside the processor's own)."""

    name: str = "agc_ttbar"
    options: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)


# ------------------------------------------------------------------------------------ engine
class EngineSpec(_Model):
    """Options of :class:`diffana.pipeline.engine.Engine`. ``block_size`` is the slab of events the
    kernels are compiled for (blocks are padded to whole slabs, so small blocks want small slabs;
    ``null``: the engine's default, ``diffana.pipeline.blocks.DEFAULT_SLAB``); ``compilation_cache``
    is a folder where JAX keeps compiled kernels between runs (driver and local workers; ``null``
    for none)."""

    chunk_size: int = Field(100_000, gt=0)
    block_size: int | None = Field(None, gt=0)
    cache: Path | None = None
    keep: Literal["memory", "disk"] = "memory"
    skip_bad_files: bool = False
    retries: int = Field(1, ge=0)
    mode: Literal["auto", "forward", "reverse"] = "auto"
    treename: str = "Events"
    compilation_cache: Path | None = None


# ------------------------------------------------------------------------------------ model
Names = list[str] | str


def _names(value: Names | None) -> list[str] | None:
    return [value] if isinstance(value, str) else value


class TemplateSpec(_Model):
    """One side of a systematic: a histogram ``variation`` suffix (or another ``sample``), a
    ``symmetrize`` flag, or a relative ``normalization`` (for ``type: Normalization``)."""

    variation: str | None = None
    sample: str | None = None
    symmetrize: bool = False
    normalization: float | None = None


class RegionSpec(_Model):
    """A channel: histogram name part ``path``, axis label ``variable`` and bin ``binning``."""

    name: str
    path: str
    variable: str | None = None
    binning: list[float] | None = Field(None, min_length=2)


class SampleSpec(_Model):
    """A sample (``data: true`` for the observed data or pseudo-data)."""

    name: str
    path: str
    data: bool = False
    regions: Names | None = None
    staterror: bool = True


class SystematicSpec(_Model):
    """``NormPlusShape`` (normsys + histosys from templates) or ``Normalization`` (normsys)."""

    name: str
    type: Literal["NormPlusShape", "Normalization"]
    up: TemplateSpec
    down: TemplateSpec
    samples: Names | None = None
    regions: Names | None = None
    modifier_name: str | None = None


class NormFactorSpec(_Model):
    """A free normalisation of some samples (``bounds`` [low, high], start at ``nominal``)."""

    name: str
    samples: Names | None = None
    regions: Names | None = None
    nominal: float | None = None
    bounds: tuple[float, float] | None = None


class ModelSpec(_Model):
    """The statistical model in cabinetry's terms.

    ``histograms`` names the histograms: ``{region}``, ``{sample}`` and ``{variation}`` are the
    paths of the region, the sample and the template (``nominal`` for nominal histograms).
    ``pseudodata`` says how missing data histograms are made: ``agc`` the AGC way,
    ``(ttbar ME_var + PS_var) / 2 + W+jets``; ``nominal`` the sum of the nominal samples; ``none``:
    they must be among the histograms.
    """

    measurement: str
    poi: str
    histograms: str = "{region}_{sample}{variation}"
    nominal: str = ""
    pseudodata: Literal["agc", "nominal", "none"] = "agc"
    regions: list[RegionSpec] = Field(min_length=1)
    samples: list[SampleSpec] = Field(min_length=2)
    systematics: list[SystematicSpec] = Field(default_factory=list)
    norm_factors: list[NormFactorSpec] = Field(min_length=1)
    fixed: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        from diffana.stats.build_config import parse_config

        parse_config(
            self.to_cabinetry()
        )  # names refer to each other (a ConfigError is a ValueError)
        return self

    def to_cabinetry(self) -> dict[str, Any]:
        """The same model as cabinetry's config dict (what :func:`diffana.stats.build_spec` takes)."""

        def drop_none(d: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in d.items() if v is not None}

        def template(t: TemplateSpec) -> dict[str, Any]:
            out = {"VariationPath": t.variation, "SamplePath": t.sample}
            out |= {"Normalization": t.normalization}
            return drop_none(out) | ({"Symmetrize": True} if t.symmetrize else {})

        path = self.histograms.replace("{region}", "{RegionPath}")
        path = path.replace("{sample}", "{SamplePath}").replace("{variation}", "{VariationPath}")
        general: dict[str, Any] = {"Measurement": self.measurement, "POI": self.poi}
        general |= {"InputPath": path, "VariationPath": self.nominal}
        if self.fixed:
            general["Fixed"] = [{"Name": k, "Value": v} for k, v in self.fixed.items()]
        regions = [
            drop_none(
                {"Name": r.name, "RegionPath": r.path, "Variable": r.variable, "Binning": r.binning}
            )
            for r in self.regions
        ]
        samples = [
            drop_none(
                {
                    "Name": s.name,
                    "SamplePath": s.path,
                    "Data": s.data or None,
                    "Regions": _names(s.regions),
                    "DisableStaterror": (not s.staterror) or None,
                }
            )
            for s in self.samples
        ]
        systematics = [
            drop_none(
                {
                    "Name": s.name,
                    "Type": s.type,
                    "Up": template(s.up),
                    "Down": template(s.down),
                    "Samples": _names(s.samples),
                    "Regions": _names(s.regions),
                    "ModifierName": s.modifier_name,
                }
            )
            for s in self.systematics
        ]
        norm_factors = [
            drop_none(
                {
                    "Name": n.name,
                    "Samples": _names(n.samples),
                    "Regions": _names(n.regions),
                    "Nominal": n.nominal,
                    "Bounds": None if n.bounds is None else list(n.bounds),
                }
            )
            for n in self.norm_factors
        ]
        return {
            "General": general,
            "Regions": regions,
            "Samples": samples,
            "Systematics": systematics,
            "NormFactors": norm_factors,
        }


# ------------------------------------------------------------------------------------ optimiser
class ObjectiveSpec(_Model):
    """What is optimised, on Asimov data with every systematic profiled.

    ``sigma_poi``: expected uncertainty on the POI (minimised); ``discovery_significance``: the
    Asimov median discovery significance Z0 (maximised); ``cls``: the median expected CLs of
    ``poi_test`` under the background-only hypothesis (minimised).
    """

    kind: Literal["sigma_poi", "discovery_significance", "cls"] = "sigma_poi"
    poi_test: float = 1.0


class HardnessSchedule(_Model):
    """The hardness (sharpness multiplier) per step: ``constant`` at ``start``, or ``geometric``
    or ``linear`` from ``start`` at the first step to ``end`` at the last."""

    schedule: Literal["constant", "geometric", "linear"] = "constant"
    start: float = Field(1.0, gt=0)
    end: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _end_given(self) -> HardnessSchedule:
        if self.schedule != "constant" and self.end is None:
            msg = f"schedule {self.schedule!r} needs 'end' (the hardness at the last step)"
            raise ValueError(msg)
        return self


class EarlyStopping(_Model):
    """Stop when the soft objective has not improved by ``min_delta`` (relative) for ``patience``
    steps at the same hardness (while the hardness grows, the soft objective rises towards the hard
    one whatever the parameters do)."""

    patience: int = Field(8, ge=1)
    min_delta: float = Field(1e-3, ge=0)


class PolishSpec(_Model):
    """After the gradient, a coordinate search on the hard objective: each optimised parameter in
    turn over ``points`` values of its range (bounds included) and its current value, the others
    held, moved to the best; ``sweeps`` rounds at most, fewer if a round moves nothing."""

    points: int = Field(10, ge=2)
    sweeps: int = Field(1, ge=1)


class OptimizerSpec(_Model):
    """An optax optimiser on parameters in units of their scales, projected into their bounds."""

    name: Literal["adam", "sgd", "adamw", "rmsprop", "adabelief"] = "adam"
    learning_rate: float = Field(0.2, gt=0)
    steps: int = Field(40, ge=1)
    hardness: HardnessSchedule = HardnessSchedule()
    early_stopping: EarlyStopping | None = EarlyStopping()
    hard_every: int = Field(0, ge=0)
    select: Literal["last", "best"] = "last"
    polish: PolishSpec | None = None


class ScanSpec(_Model):
    """The hard grid of ``diffana scan``: ``grid`` points per optimised parameter, bounds included."""

    grid: int = Field(8, ge=2)


class OutputsSpec(_Model):
    """Where results go: ``result.json``, the workspaces, histograms, plots and checkpoint."""

    folder: Path = Path("results")
    plots: bool = True
    plot_formats: list[Literal["png", "pdf"]] = Field(default_factory=lambda: ["png"], min_length=1)


class Workflow(_Model):
    """A whole workflow file."""

    name: str = "workflow"
    dataset: DatasetSpec = SyntheticDataset(kind="synthetic")
    processor: ProcessorSpec = ProcessorSpec()
    cluster: ClusterConfig = LocalClusterConfig()
    engine: EngineSpec = EngineSpec()
    model: ModelSpec
    objective: ObjectiveSpec = ObjectiveSpec()
    optimizer: OptimizerSpec = OptimizerSpec()
    scan: ScanSpec = ScanSpec()
    outputs: OutputsSpec = OutputsSpec()


# ------------------------------------------------------------------------------------ errors
_UNIONS = {"dataset", "cluster"}  # pydantic puts the union tag into the location: drop it
_HINTS = {
    "missing": "add it",
    "path_not_file": "give the path of an existing file (relative to the current folder)",
    "union_tag_not_found": "add 'kind: ...' naming which kind it is",
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    if origin is dict:
        return _models_in(typing.get_args(annotation)[1])
    return []


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at ``loc`` (best effort through unions, lists and dicts)."""
    models: list[type[BaseModel]] = [Workflow]
    for part in loc:
        if not isinstance(part, str):
            continue
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if fields:
            models = [m for f in fields for m in _models_in(f.annotation)]
        else:  # a dict key or a union tag: keep the models of the values
            models = [m for m in models if m.model_fields] or models
            tagged = [m for m in models if _tag(m) == part]
            models = tagged or models
    return sorted({name for m in models for name in m.model_fields})


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field is not None else ()
    return args[0] if len(args) == 1 else None


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        if isinstance(part, int):
            parts[-1 if parts else 0 :] = [f"{parts[-1]}[{part}]" if parts else f"[{part}]"]
            continue
        parts.append(str(part))
        skip = str(part) in _UNIONS and len(parts) == 1
    return ".".join(parts) or "(top level)"


_CABINETRY_KEYS = (  # diffana.stats names the model's keys as cabinetry does: use this file's
    ("General.Measurement", "measurement"),
    ("General.POI", "poi"),
    ("General.Fixed", "fixed"),
    ("General.InputPath", "histograms"),
    ("NormFactors", "norm_factors"),
    ("DisableStaterror", "staterror"),
    ("VariationPath", "variation"),
    ("SamplePath", "sample"),
    ("RegionPath", "path"),
    ("ModifierName", "modifier_name"),
    *((key, key.lower()) for key in ("Regions", "Samples", "Systematics", "Binning", "Bounds")),
    *((key, key.lower()) for key in ("Name", "Type", "Up", "Down", "Nominal")),
    ("Normalization: <", "normalization: <"),
)


def _model_message(message: str) -> str:
    for cabinetry, ours in _CABINETRY_KEYS:
        end = r"\b" if cabinetry[-1].isalnum() else ""
        message = re.sub(rf"\b{re.escape(cabinetry)}{end}", ours, message)
    return message


def _explain(error: Mapping[str, Any]) -> str:
    loc, kind = tuple(error["loc"]), error["type"]
    where = _location(loc)
    if kind == "value_error" and loc == ("model",):
        return f"model.{_model_message(str(error['msg']).removeprefix('Value error, '))}"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown key{hint}; remove it or use one of {allowed}"
    message = str(error["msg"])
    if kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    got = "" if kind == "missing" else f" (got {error.get('input')!r:.80})"
    fix = _HINTS.get(kind, "")
    return f"{where}: {message}{got}" + (f"; {fix}" if fix else "")


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    lines = [_explain(e) for e in exc.errors()]
    extra = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
    msg = f"{source}: " + f"\n{source}: ".join(lines[:5]) + extra
    return ConfigError(msg)


# ------------------------------------------------------------------------------------ loading
def parse_workflow(data: Any, source: str = "workflow") -> Workflow:
    """Validate a workflow given as a mapping (e.g. parsed YAML); ``source`` names it in errors.

    Raises:
        ConfigError: naming ``source``, the dotted field and the fix, for every problem found.
    """
    if not isinstance(data, Mapping):
        msg = f"{source}: the top level is {type(data).__name__}, not a mapping of sections"
        raise ConfigError(msg)
    try:
        return Workflow.model_validate(dict(data))
    except ValidationError as exc:
        raise _config_error(exc, source) from None


def default_workflow_path() -> Path:
    """``workflows/agc_ttbar.yaml`` in the current folder, else the copy installed with diffana."""
    if DEFAULT_WORKFLOW.is_file():
        return DEFAULT_WORKFLOW
    bundled = Path(__file__).parent / "_workflows" / DEFAULT_WORKFLOW.name
    if bundled.is_file():
        return bundled
    repo = Path(__file__).resolve().parents[1] / DEFAULT_WORKFLOW
    return repo if repo.is_file() else DEFAULT_WORKFLOW


def _merge(base: Any, override: Any) -> Any:
    """``override`` on top of ``base``: mappings merge key by key (unless their ``kind`` differs),
    everything else is replaced."""
    if not (isinstance(base, Mapping) and isinstance(override, Mapping)):
        return override
    if "kind" in override and base.get("kind") != override["kind"]:
        return dict(override)
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if key in base else value
    return merged


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        where = f"{seen[-1]}: extends: " if seen else ""
        msg = f"{where}cannot read the workflow file {path}: {exc.strerror or exc}; give an existing YAML file"
        raise ConfigError(msg) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        msg = f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}; fix the syntax"
        raise ConfigError(msg) from None
    data = {} if data is None else data
    if isinstance(data, Mapping) and "extends" in data:
        data = dict(data)
        parent = data.pop("extends")
        if not isinstance(parent, str):
            msg = f"{path}: extends: give the path of a workflow file (got {parent!r})"
            raise ConfigError(msg)
        base_path = (path.parent / parent).resolve()
        if base_path in seen:
            msg = f"{path}: extends: {parent} extends itself (through {[str(p) for p in seen]})"
            raise ConfigError(msg)
        data = _merge(_read_yaml(base_path, (*seen, path.resolve())), data)
    return data


def load_workflow(path: str | Path | None = None) -> Workflow:
    """Read and validate a workflow file (default: :func:`default_workflow_path`).

    A file may start from another one with ``extends: other.yaml`` (relative to the file): its
    sections are merged key by key over the other's (a section whose ``kind`` differs replaces it).

    Raises:
        ConfigError: the file is missing or not YAML, or a field is invalid (see
            :func:`parse_workflow`).
    """
    path = default_workflow_path() if path is None else Path(path)
    return parse_workflow(_read_yaml(path), str(path))
