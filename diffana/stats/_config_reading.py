"""Reading a cabinetry-style config: allowed keys, typed look-ups, errors that name the key.

Private helpers of :mod:`diffana.stats.build_config`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from diffana.errors import ConfigError

__all__ = ["REQUIRED", "did_you_mean", "read", "read_list", "section"]

_NTUPLE_ONLY = "it steers ntuple reading, but this builder is given histograms: remove it"
_KEYS: dict[str, dict[str, str | None]] = {  # allowed keys -> None, or why a known key is refused
    "top": dict.fromkeys(["General", "Regions", "Samples", "NormFactors", "Systematics"]),
    "General": dict.fromkeys(
        ["Measurement", "POI", "InputPath", "HistogramFolder", "Fixed", "VariationPath"]
    ),
    "Region": {
        **dict.fromkeys(["Name", "RegionPath", "Variable", "Binning"]),
        "Filter": _NTUPLE_ONLY,
        "Rebin": "rebin through 'Binning' (edges that are a subset of the histogram's edges)",
    },
    "Sample": {
        **dict.fromkeys(["Name", "SamplePath", "Data", "DisableStaterror", "Regions"]),
        **dict.fromkeys(["Tree", "Weight", "Filter"], _NTUPLE_ONLY),
    },
    "NormFactor": dict.fromkeys(["Name", "Regions", "Samples", "Nominal", "Bounds"]),
    "Fixed": dict.fromkeys(["Name", "Value"]),
    "Systematic": {
        **dict.fromkeys(["Name", "Type", "Up", "Down", "Regions", "Samples", "ModifierName"]),
        "Smoothing": "template smoothing is not supported: remove it or smooth the histograms",
    },
    "Template": {
        **dict.fromkeys(["VariationPath", "SamplePath", "Symmetrize", "Normalization"]),
        **dict.fromkeys(["Tree", "Weight", "Variable", "Filter", "RegionPath"], _NTUPLE_ONLY),
    },
}


def did_you_mean(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


_EXPECTED = {
    "str": "a string",
    "number": "a number",
    "bool": "true or false",
    "names": "a name or a list of names",
    "numbers": "a list of numbers",
}
REQUIRED: Any = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read(obj: Mapping[str, Any], key: str, where: str, kind: str, default: Any = None) -> Any:
    """``obj[key]`` checked to be of ``kind`` (see ``_EXPECTED``), or ``default`` if absent."""
    if key not in obj:
        if default is REQUIRED:
            msg = f"{where}: the required key {key!r} is missing; add '{key}: ...'"
            raise ConfigError(msg)
        return default
    value = obj[key]
    many = isinstance(value, list | tuple)
    ok = {
        "str": isinstance(value, str),
        "number": _is_number(value),
        "bool": isinstance(value, bool),
        "names": isinstance(value, str) or (many and all(isinstance(v, str) for v in value)),
        "numbers": many and all(_is_number(v) for v in value),
    }.get(kind, True)  # "any": checked by the caller
    if not ok:
        msg = f"{where}.{key}: expected {_EXPECTED[kind]}, got {value!r}"
        raise ConfigError(msg)
    if kind == "names":
        return (value,) if isinstance(value, str) else tuple(value)
    if kind in ("number", "numbers"):
        return float(value) if kind == "number" else tuple(float(v) for v in value)
    return value


def section(obj: Any, kind: str, where: str) -> Mapping[str, Any]:
    """Check that ``obj`` is a mapping with only the keys allowed for ``kind``."""
    if not isinstance(obj, Mapping):
        msg = f"{where}: expected a mapping of keys to values, got {type(obj).__name__} {obj!r}"
        raise ConfigError(msg)
    allowed = _KEYS[kind]
    for key in obj:
        if key not in allowed:
            msg = (
                f"{where}: unknown key {key!r}{did_you_mean(str(key), list(allowed))}; "
                f"allowed keys are {sorted(k for k, v in allowed.items() if v is None)}"
            )
            raise ConfigError(msg)
        if allowed[key] is not None:
            msg = f"{where}.{key}: not supported: {allowed[key]}"
            raise ConfigError(msg)
    return obj


def read_list(obj: Mapping[str, Any], key: str, where: str, *, required: bool) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list | tuple) or (required and not value):
        msg = f"{where}{key}: expected a non-empty list, got {value!r}"
        raise ConfigError(msg)
    return list(value)
