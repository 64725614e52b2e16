"""Checks of a pyhf model spec (``{"channels": [...], "parameters": [...]}``) before a model is built.

A model can be built without a workspace, so these checks repeat, at the model level, the ones of
the workspace reader that the model relies on. Sample yields may be negative (negative-weight Monte
Carlo) as long as each bin's total is not; uncertainties must be >= 0. Every problem is a :class:`~diffana.errors.ModelError` that names the channel, sample and modifier
and says how to fix it. Values that are JAX tracers (a spec built inside ``jit``) are not inspected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from diffana.errors import ModelError

__all__ = ["MODIFIER_TYPES", "check_spec", "where"]

MODIFIER_TYPES = (
    "histosys",
    "lumi",
    "normfactor",
    "normsys",
    "shapefactor",
    "shapesys",
    "staterror",
)
"""The seven HistFactory modifier types, in pyhf's order (which fixes the parameter order)."""


def where(channel: str, sample: str | None = None, modifier: Mapping | None = None) -> str:
    """Human-readable location of a spec element."""
    text = f"channel {channel!r}"
    if sample is not None:
        text += f", sample {sample!r}"
    if modifier is not None:
        text += f", modifier {modifier.get('name')!r} ({modifier.get('type')})"
    return text


def _is_concrete(values) -> bool:
    try:
        np.asarray(values, dtype=float)
    except Exception:  # tracers and ragged lists are checked by the caller
        return False
    return True


def _numbers(values, place: str, what: str, nbins: int | None, *, nonnegative: bool) -> None:
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        msg = f"{place}: {what} must be a list of numbers, got {values!r}"
        raise ModelError(msg)
    if nbins is not None and len(values) != nbins:
        msg = (
            f"{place}: {what} has {len(values)} bins but the channel has {nbins} "
            f"(the length of its first sample's data); give one value per bin"
        )
        raise ModelError(msg)
    if not _is_concrete(values):
        if all(isinstance(v, (int, float)) or hasattr(v, "dtype") for v in values):
            return
        msg = f"{place}: {what} must be a list of numbers, got {values!r}"
        raise ModelError(msg)
    arr = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(arr)):
        msg = f"{place}: {what} contains a non-finite value ({list(values)!r}); replace NaN/inf"
        raise ModelError(msg)
    if nonnegative and np.any(arr < 0):
        msg = f"{place}: {what} contains a negative value ({list(values)!r}); yields and "
        msg += "uncertainties must be >= 0"
        raise ModelError(msg)


def _number(value, place: str, what: str) -> None:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or hasattr(value, "dtype")):
        msg = f"{place}: {what} must be a number, got {value!r}"
        raise ModelError(msg)
    if _is_concrete(value) and not (math.isfinite(float(value)) and float(value) >= 0):
        msg = f"{place}: {what} = {value!r} must be finite and >= 0 (a normsys factor)"
        raise ModelError(msg)


def _check_modifier(mod, channel: str, sample: str, nbins: int) -> None:
    if not isinstance(mod, Mapping):
        msg = f"{where(channel, sample)}: a modifier must be an object, got {mod!r}"
        raise ModelError(msg)
    place = where(channel, sample, mod)
    if not isinstance(mod.get("name"), str) or not mod["name"]:
        msg = f"{place}: a modifier needs a non-empty string 'name'"
        raise ModelError(msg)
    mtype = mod.get("type")
    if mtype not in MODIFIER_TYPES:
        msg = f"{place}: unknown modifier type {mtype!r}; use one of {', '.join(MODIFIER_TYPES)}"
        raise ModelError(msg)
    data = mod.get("data")
    if mtype == "histosys":
        if not isinstance(data, Mapping) or not {"lo_data", "hi_data"} <= set(data):
            msg = f"{place}: histosys data must be {{'lo_data': [...], 'hi_data': [...]}}"
            raise ModelError(msg)
        for key in ("lo_data", "hi_data"):
            _numbers(data[key], place, key, nbins, nonnegative=False)
    elif mtype == "normsys":
        if not isinstance(data, Mapping) or not {"lo", "hi"} <= set(data):
            msg = f"{place}: normsys data must be {{'lo': number, 'hi': number}}, got {data!r}"
            raise ModelError(msg)
        _number(data["lo"], place, "lo")
        _number(data["hi"], place, "hi")
    elif mtype in ("staterror", "shapesys"):
        _numbers(data, place, f"{mtype} data", nbins, nonnegative=True)


def check_spec(spec) -> None:
    """Raise :class:`~diffana.errors.ModelError` if ``spec`` is not a usable model spec.

    Examples:
        >>> check_spec({"channels": []})
        Traceback (most recent call last):
        ...
        diffana.errors.ModelError: the model spec has no channels; ...
    """
    if not isinstance(spec, Mapping):
        msg = f"a model spec must be a dict with 'channels', got {type(spec).__name__}"
        raise ModelError(msg)
    channels = spec.get("channels")
    if not isinstance(channels, Sequence) or isinstance(channels, (str, bytes)):
        msg = "the model spec needs a 'channels' list"
        raise ModelError(msg)
    if not channels:
        msg = "the model spec has no channels; add at least one channel with one sample"
        raise ModelError(msg)
    seen: set[str] = set()
    for channel in channels:
        if not isinstance(channel, Mapping) or not isinstance(channel.get("name"), str):
            msg = f"a channel must be an object with a string 'name', got {channel!r}"
            raise ModelError(msg)
        cname = channel["name"]
        if cname in seen:
            msg = f"channel {cname!r} appears twice; channel names must be unique"
            raise ModelError(msg)
        seen.add(cname)
        samples = channel.get("samples")
        if not isinstance(samples, Sequence) or isinstance(samples, (str, bytes)) or not samples:
            msg = f"{where(cname)} has no samples; give it a non-empty 'samples' list"
            raise ModelError(msg)
        nbins = None
        snames: set[str] = set()
        for sample in samples:
            if not isinstance(sample, Mapping) or not isinstance(sample.get("name"), str):
                msg = f"{where(cname)}: a sample must be an object with a string 'name'"
                raise ModelError(msg)
            sname = sample["name"]
            if sname in snames:
                msg = f"{where(cname, sname)} appears twice in the channel; merge the samples"
                raise ModelError(msg)
            snames.add(sname)
            data = sample.get("data")
            if nbins is None:
                _numbers(data, where(cname, sname), "data", None, nonnegative=False)
                nbins = len(data)
                if nbins == 0:
                    msg = f"{where(cname, sname)}: data is empty; a channel needs >= 1 bin"
                    raise ModelError(msg)
                total = np.zeros(nbins)
            _numbers(data, where(cname, sname), "data", nbins, nonnegative=False)
            if _is_concrete(data):
                total += np.asarray(data, dtype=float)
            modifiers = sample.get("modifiers", [])
            if not isinstance(modifiers, Sequence) or isinstance(modifiers, (str, bytes)):
                msg = f"{where(cname, sname)}: 'modifiers' must be a list"
                raise ModelError(msg)
            keys = set()
            for mod in modifiers:
                _check_modifier(mod, cname, sname, nbins)
                key = (mod["name"], mod["type"])
                if key in keys:
                    msg = f"{where(cname, sname, mod)} is listed twice on the sample; keep one"
                    raise ModelError(msg)
                keys.add(key)
        if np.any(total < 0):
            msg = f"{where(cname)}: the nominal yield summed over samples is negative in bins "
            msg += f"{np.flatnonzero(total < 0).tolist()} ({total.tolist()}); a bin's total "
            msg += "expected count must be >= 0"
            raise ModelError(msg)
