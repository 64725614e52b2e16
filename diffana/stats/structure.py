"""The static structure of a HistFactory model: channels, samples, modifiers and parameter layout.

A :class:`ModelStructure` is built once from a pyhf model spec and never traced: its index tables
and masks are NumPy constants that XLA folds into every compiled function. The numbers that may
change (sample yields, variation templates, uncertainties) live in a separate
:class:`~diffana.stats.yields.Yields` pytree, so one compiled function serves every set of yields of
the same structure. Structures compare (and hash) by the program they compile to: their layout,
excluding names, yields and the numbers derived from yields (staterror widths, shapesys factors).
Rebuilding one from a spec that differs only in its yields, or only in names (e.g. the signal
sample of another signal point), reuses the compiled functions, and the yields of such models can
be stacked and ``vmap``-ed over.

Layout conventions are pyhf's: channels and samples sorted by name, bins of all channels
concatenated, parameters ordered as described in :mod:`diffana.stats.parameters`.

Examples:
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [5.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [5.0]}]}]}]}
    >>> s = structure_from_spec(spec)
    >>> s.par_names, s.poi_index, s.samples
    (('mu', 'unc[0]'), 0, ('bkg', 'sig'))
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from diffana.errors import ModelError
from diffana.stats import _speccheck, parameters
from diffana.stats._tables import build_tables, parameter_tables
from diffana.stats.interpolation import ADDITIVE_CODES, MULTIPLICATIVE_CODES

__all__ = ["DEFAULT_MODIFIER_SETTINGS", "ModelStructure", "structure_from_spec"]

DEFAULT_MODIFIER_SETTINGS = {
    "normsys": {"interpcode": "code4"},
    "histosys": {"interpcode": "code4p"},
}
"""pyhf's defaults when no ``modifier_settings`` are given (``code1``/``code0`` when they are)."""


@dataclass(frozen=True, eq=False)
class ModelStructure:
    """Everything about a model that is not a yield. Immutable, hashable, never traced.

    Attributes:
        channels, channel_nbins, samples, modifiers: pyhf's summary (sorted names).
        paramsets: the parameter sets in model order.
        poi_name, poi_index: the parameter of interest (``None`` if unset).
        histosys_code, normsys_code: interpolation codes.
        clip_sample_data, clip_bin_data: optional lower clips of expected yields (pyhf's options).
        tables: NumPy index tables and masks (see :func:`diffana.stats._tables.build_tables`).
    """

    channels: tuple[str, ...]
    channel_nbins: tuple[int, ...]
    samples: tuple[str, ...]
    modifiers: tuple[tuple[str, str], ...]
    paramsets: tuple[parameters.ParamSet, ...]
    poi_name: str | None
    poi_index: int | None
    histosys_code: str
    normsys_code: str
    clip_sample_data: float | None
    clip_bin_data: float | None
    tables: dict = field(repr=False)
    _key: bytes = field(repr=False, default=b"")

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, ModelStructure) and self._key == other._key

    @property
    def npars(self) -> int:
        return sum(p.n_parameters for p in self.paramsets)

    @property
    def nbins(self) -> int:
        return sum(self.channel_nbins)

    @property
    def nauxdata(self) -> int:
        return int(self.tables["aux_size"])

    @property
    def par_order(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.paramsets)

    @property
    def par_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for p in self.paramsets:
            names += [p.name] if p.is_scalar else [f"{p.name}[{i}]" for i in range(p.n_parameters)]
        return tuple(names)

    def par_slice(self, name: str) -> slice:
        start = 0
        for p in self.paramsets:
            if p.name == name:
                return slice(start, start + p.n_parameters)
            start += p.n_parameters
        msg = f"no parameter {name!r} in the model; parameters are {', '.join(self.par_order)}"
        raise ModelError(msg)

    def param_set(self, name: str) -> parameters.ParamSet:
        for p in self.paramsets:
            if p.name == name:
                return p
        msg = f"no parameter {name!r} in the model; parameters are {', '.join(self.par_order)}"
        raise ModelError(msg)

    def channel_slice(self, name: str) -> slice:
        start = 0
        for cname, n in zip(self.channels, self.channel_nbins, strict=True):
            if cname == name:
                return slice(start, start + n)
            start += n
        msg = f"no channel {name!r} in the model; channels are {', '.join(self.channels)}"
        raise ModelError(msg)

    def suggested_init(self) -> np.ndarray:
        return self.tables["init"].copy()

    def suggested_bounds(self) -> np.ndarray:
        return self.tables["bounds"].copy()

    def suggested_fixed(self) -> np.ndarray:
        return self.tables["fixed"].copy()


def _interp_codes(modifier_settings) -> tuple[str, str]:
    settings = DEFAULT_MODIFIER_SETTINGS if modifier_settings is None else modifier_settings
    if not isinstance(settings, Mapping):
        msg = f"modifier_settings must be a dict like {DEFAULT_MODIFIER_SETTINGS}, got {settings!r}"
        raise ModelError(msg)
    unknown = set(settings) - {"normsys", "histosys"}
    if unknown:
        msg = f"modifier_settings for {sorted(unknown)} are not supported; only normsys and "
        msg += "histosys take settings ({'interpcode': ...})"
        raise ModelError(msg)
    codes = {}
    for mtype, default, allowed in (
        ("histosys", "code0", ADDITIVE_CODES),
        ("normsys", "code1", MULTIPLICATIVE_CODES),
    ):
        entry = settings.get(mtype, {})
        extra = set(entry) - {"interpcode"} if isinstance(entry, Mapping) else {"?"}
        code = entry.get("interpcode", default) if not extra else None
        if code not in allowed:
            msg = f"modifier_settings[{mtype!r}] = {entry!r}: interpcode must be one of {allowed}"
            raise ModelError(msg)
        codes[mtype] = code
    return codes["histosys"], codes["normsys"]


def structure_from_spec(
    spec: Mapping,
    *,
    poi_name: str | None = "mu",
    modifier_settings: Mapping | None = None,
    clip_sample_data: float | None = None,
    clip_bin_data: float | None = None,
) -> ModelStructure:
    """Build the static structure of the model described by a pyhf model spec.

    Args:
        spec: ``{"channels": [...], "parameters": [...]}`` as given to ``pyhf.Model``.
        poi_name: the parameter of interest (``None`` or ``""`` for none).
        modifier_settings: interpolation codes, e.g. ``{"normsys": {"interpcode": "code1"}}``;
            as in pyhf, giving them replaces the defaults (code4 / code4p) by the builder defaults
            (code1 / code0) for the types not mentioned.
        clip_sample_data, clip_bin_data: lower clips of the expected yield per sample / per bin.

    Raises:
        ModelError: malformed spec, unknown modifier type, bin-count mismatch, negative or
            non-finite yields, inconsistent parameter configuration, or unknown POI.
    """
    _speccheck.check_spec(spec)
    histosys_code, normsys_code = _interp_codes(modifier_settings)
    summary = _summarise(spec)
    requirements, tables = build_tables(spec, summary)
    if not requirements:
        msg = "the model has no parameters; add at least one modifier (e.g. a normfactor)"
        raise ModelError(msg)
    paramsets = tuple(parameters.reduce_requirements(requirements, spec.get("parameters", [])))
    tables.update(_finalise_tables(paramsets, tables, histosys_code, normsys_code))
    poi_index = None
    if poi_name:
        names = [p.name for p in paramsets]
        if poi_name not in names:
            msg = (
                f"the parameter of interest {poi_name!r} is not a parameter of the model; "
                f"choose one of {', '.join(names)} (or pass poi_name=None)"
            )
            raise ModelError(msg)
        pset = paramsets[names.index(poi_name)]
        if pset.n_parameters > 1:
            msg = f"the parameter of interest {poi_name!r} has {pset.n_parameters} components; "
            msg += "a POI must be a scalar parameter (normfactor, normsys, histosys or lumi)"
            raise ModelError(msg)
        poi_index = sum(p.n_parameters for p in paramsets[: names.index(poi_name)])
    else:
        poi_name = None
    structure = ModelStructure(
        channels=summary["channels"],
        channel_nbins=summary["nbins"],
        samples=summary["samples"],
        modifiers=summary["modifiers"],
        paramsets=paramsets,
        poi_name=poi_name,
        poi_index=poi_index,
        histosys_code=histosys_code,
        normsys_code=normsys_code,
        clip_sample_data=None if clip_sample_data is None else float(clip_sample_data),
        clip_bin_data=None if clip_bin_data is None else float(clip_bin_data),
        tables=tables,
    )
    for arr in tables.values():
        if isinstance(arr, np.ndarray):
            arr.flags.writeable = False
    object.__setattr__(structure, "_key", _content_key(structure))
    return structure


def _summarise(spec) -> dict:
    channels = sorted(c["name"] for c in spec["channels"])
    nbins = {c["name"]: len(c["samples"][0]["data"]) for c in spec["channels"]}
    samples = sorted({s["name"] for c in spec["channels"] for s in c["samples"]})
    modifiers = sorted(
        {
            (m["name"], m["type"])
            for c in spec["channels"]
            for s in c["samples"]
            for m in s.get("modifiers", [])
        }
    )
    offsets, start = {}, 0
    for c in channels:
        offsets[c] = start
        start += nbins[c]
    return {
        "channels": tuple(channels),
        "nbins": tuple(nbins[c] for c in channels),
        "offsets": offsets,
        "nbins_by_name": nbins,
        "samples": tuple(samples),
        "modifiers": tuple(modifiers),
    }


def _finalise_tables(paramsets, tables, histosys_code, normsys_code) -> dict:
    """Parameter vectors (init, bounds, fixed, kinks) and the constraint tables."""
    starts, start = {}, 0
    for p in paramsets:
        starts[p.name] = start
        start += p.n_parameters
    npars = start
    init = np.array([v for p in paramsets for v in p.suggested_init], dtype=float)
    bounds = np.array([b for p in paramsets for b in p.suggested_bounds], dtype=float)
    fixed = np.array([f for p in paramsets for f in p.suggested_fixed], dtype=bool)
    kinks = np.zeros(npars, dtype=bool)
    if histosys_code == "code0":
        kinks[[starts[n] for n in tables["histosys_names"]]] = True
    if normsys_code == "code1":
        kinks[[starts[n] for n in tables["normsys_names"]]] = True
    index = parameter_tables(tables, starts)
    sources = {k: index.pop(k) for k in ("staterror_src", "shapesys_src")}
    return {
        "init": init,
        "bounds": bounds.reshape(npars, 2),
        "fixed": fixed,
        "kinks": kinks,
        **index,
        **_constraint_tables(paramsets, starts, sources),
    }


def _constraint_tables(paramsets, starts, index) -> dict:
    """Where each auxiliary measurement sits, which parameter it constrains and its width."""
    gauss = {k: [] for k in ("par", "pos", "sigma", "sigma_src", "aux")}
    pois = {k: [] for k in ("par", "pos", "factor", "factor_src", "aux", "aux_src")}
    se_src, ss_src = index["staterror_src"], index["shapesys_src"]
    pos = 0
    for p in paramsets:
        if not p.constrained:
            continue
        for i in range(p.n_parameters):
            par = starts[p.name] + i
            if p.constraint == "normal":
                sigmas = p.sigmas or [1.0] * p.n_parameters
                derived = se_src.get(par, -1) if "sigmas" not in p.user_keys else -1
                gauss["par"].append(par)
                gauss["pos"].append(pos)
                gauss["sigma"].append(float(sigmas[i]) if derived < 0 else 1.0)
                gauss["sigma_src"].append(derived)
                gauss["aux"].append(float(p.auxdata[i]))
            else:
                src = ss_src.get(par, -1)
                factor_src = src if "factors" not in p.user_keys else -1
                aux_src = src if "auxdata" not in p.user_keys else -1
                pois["par"].append(par)
                pois["pos"].append(pos)
                pois["factor"].append(float(p.factors[i]) if factor_src < 0 else 1.0)
                pois["factor_src"].append(factor_src)
                pois["aux"].append(float(p.auxdata[i]) if aux_src < 0 else 1.0)
                pois["aux_src"].append(aux_src)
            pos += 1
    out = {"aux_size": pos}
    for prefix, table in (("gauss", gauss), ("pois", pois)):
        for key, values in table.items():
            dtype = int if key in ("par", "pos") or key.endswith("_src") else float
            out[f"{prefix}_{key}"] = np.asarray(values, dtype=dtype)
    return out


def _content_key(structure: ModelStructure) -> bytes:
    digest = hashlib.sha256()
    # yield-derived numbers (staterror sigmas, shapesys factors) are not part of the structure
    # and names are not either: structures that compile to the same program compare equal
    params = tuple(
        (
            p.n_parameters,
            p.is_scalar,
            p.suggested_init,
            p.suggested_bounds,
            p.fixed,
            p.constraint,
            sorted(p.user_keys),
            [getattr(p, k, None) for k in sorted(p.user_keys)],
        )
        for p in structure.paramsets
    )
    meta = (
        structure.channel_nbins,
        len(structure.samples),
        [mtype for _, mtype in structure.modifiers],
        params,
        structure.poi_index,
        structure.histosys_code,
        structure.normsys_code,
        structure.clip_sample_data,
        structure.clip_bin_data,
    )
    digest.update(repr(meta).encode())
    for key in sorted(set(structure.tables) - {"nominal_spec"}):
        value = structure.tables[key]
        digest.update(key.encode())
        if isinstance(value, np.ndarray):
            digest.update(str((value.dtype, value.shape)).encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, int):  # names (tuples of str) are left out
            digest.update(repr(value).encode())
    return digest.digest()
