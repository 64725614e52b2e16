"""Checks of a pyhf specification that its JSON schema cannot express.

Each check raises a :class:`~diffana.errors.WorkspaceError` that names the JSON path, the bad value
and the fix. The rules follow what pyhf 0.7.6 rejects when it builds a model (duplicate names,
sample and modifier data of the wrong length, parameters shared between incompatible modifiers,
parameter configurations of the wrong length) plus what pyhf lets through and then fails on
(channels without observations, non-finite numbers, negative counts, bounds that are not ``[lo, hi]``
pairs), so a spec that passes here is one the model can be built from.

Per-sample negative yields are allowed (negative-weight Monte Carlo produces them), but the total
nominal yield of a channel bin, summed over samples, must not be negative.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from diffana.stats._schema import format_path, spec_error

__all__ = [
    "ParameterInfo",
    "check_channels",
    "check_measurement_parameters",
    "check_observations",
    "check_unique",
    "parameter_table",
]

log = logging.getLogger(__name__)

# pyhf's parameter-set family of each modifier type; modifiers sharing a name must agree on it
_FAMILY = {
    "normfactor": "normfactor",
    "shapefactor": "shapefactor",
    "normsys": "alpha (normsys/histosys)",
    "histosys": "alpha (normsys/histosys)",
    "lumi": "lumi",
    "staterror": "staterror",
    "shapesys": "shapesys",
}
CONSTRAINT = {
    "normfactor": "unconstrained",
    "shapefactor": "unconstrained",
    "normsys": "constrained_by_normal",
    "histosys": "constrained_by_normal",
    "lumi": "constrained_by_normal",
    "staterror": "constrained_by_normal",
    "shapesys": "constrained_by_poisson",
}
# configuration keys each modifier type accepts (pyhf raises on the others)
_BASE_KEYS = {"name", "inits", "bounds", "fixed"}
ALLOWED_KEYS = {
    "normfactor": _BASE_KEYS,
    "shapefactor": _BASE_KEYS,
    "normsys": _BASE_KEYS | {"auxdata"},
    "histosys": _BASE_KEYS | {"auxdata"},
    "lumi": _BASE_KEYS | {"auxdata", "sigmas"},
    "staterror": _BASE_KEYS | {"auxdata", "sigmas"},
    "shapesys": _BASE_KEYS | {"auxdata", "factors"},
}


class ParameterInfo(NamedTuple):
    """What the channels say about one parameter: its modifier type, size and first use."""

    mtype: str
    n_parameters: int
    path: tuple[Any, ...]
    channels: tuple[str, ...]

    @property
    def constraint(self) -> str:
        return CONSTRAINT[self.mtype]


def check_unique(items: Sequence[Mapping[str, Any]], path: Sequence[Any], what: str) -> None:
    """Raise if two items of a list of named objects share a name."""
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        name = item["name"]
        if name in seen:
            msg = f"duplicate {what} name {name!r}, already used at index {seen[name]}"
            fix = f"give each {what} a unique name or merge the two"
            raise spec_error(msg, path=[*path, i, "name"], value=name, fix=fix)
        seen[name] = i


def _check_numbers(values: Sequence[Any], path: list[Any], what: str, *, nonneg: bool) -> None:
    for i, value in enumerate(values):
        x = float(value)
        if not math.isfinite(x):
            msg = f"{what} must be finite"
            raise spec_error(msg, path=[*path, i], value=value, fix="replace NaN/inf by a number")
        if nonneg and x < 0:
            msg = f"{what} must not be negative"
            raise spec_error(msg, path=[*path, i], value=value, fix="use a value >= 0")


def _check_length(values: Sequence[Any], nbins: int, path: list[Any], what: str) -> None:
    if len(values) != nbins:
        msg = f"{what} has {len(values)} entries but the channel has {nbins} bins"
        fix = f"give exactly {nbins} values (the length of the channel's first sample)"
        raise spec_error(msg, path=path, value=list(values), fix=fix)


def _check_modifier(mod: Mapping[str, Any], nbins: int, path: list[Any]) -> None:
    mtype, data = mod["type"], mod["data"]
    if mtype == "histosys":
        for key in ("lo_data", "hi_data"):
            _check_length(data[key], nbins, [*path, "data", key], f"histosys {key}")
            _check_numbers(data[key], [*path, "data", key], f"histosys {key}", nonneg=False)
    elif mtype == "normsys":
        for key in ("lo", "hi"):
            _check_numbers([data[key]], [*path, "data"], f"normsys {key}", nonneg=True)
    elif mtype in ("shapesys", "staterror"):
        _check_length(data, nbins, [*path, "data"], f"{mtype} data")
        _check_numbers(data, [*path, "data"], f"{mtype} uncertainty", nonneg=True)


def check_channels(channels: Sequence[Mapping[str, Any]], *, prefix: str = "channels") -> None:
    """Check names, bin counts and numbers of schema-valid channels."""
    check_unique(channels, [prefix], "channel")
    for c, channel in enumerate(channels):
        samples = channel["samples"]
        cpath = [prefix, c, "samples"]
        check_unique(samples, cpath, f"sample (in channel {channel['name']!r})")
        nbins = len(samples[0]["data"])
        total = [0.0] * nbins
        for s, sample in enumerate(samples):
            spath = [*cpath, s]
            _check_length(sample["data"], nbins, [*spath, "data"], f"sample {sample['name']!r}")
            _check_numbers(sample["data"], [*spath, "data"], "a yield", nonneg=False)
            total = [t + float(x) for t, x in zip(total, sample["data"], strict=True)]
            seen: set[tuple[str, str]] = set()
            for m, mod in enumerate(sample["modifiers"]):
                key = (mod["name"], mod["type"])
                if key in seen:
                    msg = f"modifier {mod['name']!r} of type {mod['type']!r} appears twice"
                    fix = "remove the duplicate or rename one of them"
                    raise spec_error(msg, path=[*spath, "modifiers", m], value=mod, fix=fix)
                seen.add(key)
                _check_modifier(mod, nbins, [*spath, "modifiers", m])
        for b, value in enumerate(total):
            if value < 0:
                msg = f"the total nominal yield of bin {b} (sum over samples) is negative"
                fix = "a Poisson mean must be >= 0: fix the sample yields of this bin"
                raise spec_error(msg, path=[prefix, c], value=value, fix=fix)


def parameter_table(channels: Sequence[Mapping[str, Any]]) -> dict[str, ParameterInfo]:
    """Map each parameter name to its modifier type and size, checking sharing rules as pyhf.

    Modifiers with the same name share one parameter, which needs one modifier family
    (normsys and histosys may share); a shapesys may not be shared; a shapefactor shared between
    channels needs the same bin count everywhere; a staterror spans the channels it appears in.
    """
    table: dict[str, ParameterInfo] = {}
    for c, channel in enumerate(channels):
        nbins = len(channel["samples"][0]["data"])
        for s, sample in enumerate(channel["samples"]):
            for m, mod in enumerate(sample["modifiers"]):
                name, mtype = mod["name"], mod["type"]
                path = ("channels", c, "samples", s, "modifiers", m)
                n = 1 if mtype in ("normfactor", "normsys", "histosys", "lumi") else nbins
                old = table.get(name)
                if old is None:
                    table[name] = ParameterInfo(mtype, n, path, (channel["name"],))
                    continue
                _check_sharing(old, name, mtype, n, path, channel["name"])
                if channel["name"] not in old.channels:
                    n_total = old.n_parameters + n if mtype == "staterror" else n
                    table[name] = old._replace(
                        n_parameters=n_total, channels=(*old.channels, channel["name"])
                    )
    return table


def _check_sharing(
    old: ParameterInfo, name: str, mtype: str, n: int, path: tuple[Any, ...], channel: str
) -> None:
    first = f"first used at {'.'.join(map(str, old.path))} as {old.mtype}"
    if _FAMILY[old.mtype] != _FAMILY[mtype]:
        msg = f"parameter {name!r} is a {mtype} here but {first}; the two cannot share a parameter"
        raise spec_error(msg, path=path, value=mtype, fix="rename one of the modifiers")
    if mtype == "shapesys":
        msg = f"shapesys {name!r} cannot be shared between samples ({first})"
        fix = "give each sample its own shapesys name, or use staterror for a combined one"
        raise spec_error(msg, path=path, value=name, fix=fix)
    if mtype == "shapefactor" and channel not in old.channels and n != old.n_parameters:
        msg = f"shapefactor {name!r} has {n} bins here but {old.n_parameters} where {first}"
        fix = "share a shapefactor only between channels with the same number of bins"
        raise spec_error(msg, path=path, value=n, fix=fix)


def check_observations(
    observations: Sequence[Mapping[str, Any]], channels: Sequence[Mapping[str, Any]]
) -> None:
    """Each channel has one observation of its bin count, counts finite and >= 0.

    Observations of channels the workspace does not have are allowed, as in pyhf: published
    signal patches remove channels (e.g. validation regions) and leave their observations.
    """
    check_unique(observations, ["observations"], "observation")
    nbins = {ch["name"]: len(ch["samples"][0]["data"]) for ch in channels}
    names = [obs["name"] for obs in observations]
    for o, obs in enumerate(observations):
        if obs["name"] not in nbins:  # allowed: published signal patches remove channels
            continue
        path = ["observations", o, "data"]
        _check_length(obs["data"], nbins[obs["name"]], path, f"observation {obs['name']!r}")
        _check_numbers(obs["data"], path, "an observed count", nonneg=True)
    for c, channel in enumerate(channels):
        if channel["name"] not in names:
            msg = f"channel {channel['name']!r} has no observation"
            fix = f"add {{'name': {channel['name']!r}, 'data': [...]}} to 'observations'"
            raise spec_error(msg, path=["channels", c, "name"], value=channel["name"], fix=fix)


def check_measurement_parameters(
    parameters: Sequence[Mapping[str, Any]],
    path: Sequence[Any],
    table: Mapping[str, ParameterInfo],
    *,
    warn_unknown: bool = False,
) -> None:
    """Check the parameter configurations of one measurement against the channels' parameters.

    Configurations of parameters the channels do not have are ignored, as pyhf does (a patch may
    add the parameter later, and HistFactory exports always configure ``lumi``); with
    ``warn_unknown`` they are logged.
    """
    check_unique(parameters, path, "parameter configuration")
    for p, config in enumerate(parameters):
        ppath = [*path, p]
        for key in ("inits", "auxdata", "sigmas", "factors"):
            if key in config:
                _check_numbers(config[key], [*ppath, key], key, nonneg=key in ("sigmas", "factors"))
        for b, bound in enumerate(config.get("bounds", [])):
            bpath = [*ppath, "bounds", b]
            if len(bound) != 2:
                fix = "write each bound as a [low, high] pair"
                msg = "a bound needs two numbers"
                raise spec_error(msg, path=bpath, value=bound, fix=fix)
            _check_numbers(bound, bpath, "a bound", nonneg=False)
            if bound[0] > bound[1]:
                fix = "swap the two numbers"
                msg = "the low bound exceeds the high bound"
                raise spec_error(msg, path=bpath, value=bound, fix=fix)
            inits = config.get("inits", [])
            if b < len(inits) and not bound[0] <= inits[b] <= bound[1]:
                msg = f"init {inits[b]} lies outside its bounds {bound}"
                fix = "move the init inside the bounds or widen them"
                raise spec_error(msg, path=[*ppath, "inits", b], value=inits[b], fix=fix)
        info = table.get(config["name"])
        if info is None:
            if warn_unknown and config["name"] != "lumi":
                log.warning(
                    "%s configures parameter %r, which no modifier of the model uses; ignored",
                    format_path(ppath),
                    config["name"],
                )
            continue
        _check_config_against(config, info, ppath)


def _check_config_against(config: Mapping[str, Any], info: ParameterInfo, path: list[Any]) -> None:
    name = config["name"]
    for key in sorted(set(config) - ALLOWED_KEYS[info.mtype]):
        msg = f"{info.mtype} parameter {name!r} ({info.constraint}) does not use {key!r}"
        fix = f"remove {key!r}; allowed keys: {', '.join(sorted(ALLOWED_KEYS[info.mtype]))}"
        raise spec_error(msg, path=[*path, key], value=config[key], fix=fix)
    for key in ("inits", "bounds", "auxdata", "sigmas", "factors"):
        if key in config and len(config[key]) != info.n_parameters:
            msg = f"{key} of {name!r} has {len(config[key])} entries, the parameter has {info.n_parameters}"
            fix = f"give {info.n_parameters} entries, one per component of {name!r}"
            raise spec_error(msg, path=[*path, key], value=config[key], fix=fix)
