"""JSON-schema validation of pyhf specifications (schema version 1.0.0).

The schema files are pyhf's own (``diffana/stats/schemas/1.0.0``, see the README there). A
violation becomes a :class:`~diffana.errors.WorkspaceError` whose message names the JSON path,
the offending value and what the schema expected; the error also carries them as ``.path`` and
``.value``. Modifiers get a dedicated message: pyhf's schema lists the seven modifier types as an
``anyOf``, whose generic message ("is not valid under any of the given schemas") helps no one.
"""

from __future__ import annotations

import functools
import json
import numbers
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import jsonschema
import numpy as np
import referencing

from diffana.errors import WorkspaceError
from diffana.stats._speccheck import MODIFIER_TYPES

__all__ = [
    "MODIFIER_TYPES",
    "SCHEMA_VERSION",
    "SUPPORTED_VERSIONS",
    "format_path",
    "spec_error",
    "validate",
]

SCHEMA_VERSION = "1.0.0"
SUPPORTED_VERSIONS = (SCHEMA_VERSION,)
# MODIFIER_TYPES is also the order of the modifier ``anyOf`` in defs.json#/definitions/sample
_SCHEMA_NAMES = ("defs", "jsonpatch", "measurement", "model", "patchset", "workspace")


def format_path(path: Iterable[Any]) -> str:
    """Render a JSON path the way pyhf does: ``channels[0].samples[1].data``.

    Examples:
        >>> format_path(["channels", 0, "samples", 1, "data"])
        'channels[0].samples[1].data'
        >>> format_path([])
        '<root>'
    """
    out = ""
    for item in path:
        out += f"[{item}]" if isinstance(item, int) else f".{item}"
    return out.lstrip(".") or "<root>"


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...}"


def spec_error(
    message: str, *, path: Sequence[Any] = (), value: Any = None, fix: str = ""
) -> WorkspaceError:
    """Build a :class:`WorkspaceError` naming the place, the bad value and the fix.

    Examples:
        >>> err = spec_error("bad", path=["channels", 0], value=3, fix="use 4")
        >>> str(err)
        'at channels[0]: bad (got 3); use 4'
        >>> err.path, err.value
        ('channels[0]', 3)
    """
    where = format_path(path)
    text = f"at {where}: {message} (got {_short(value)})"
    if fix:
        text += f"; {fix}"
    err = WorkspaceError(text)
    err.path = where
    err.value = value
    return err


@functools.cache
def _registry(version: str) -> referencing.Registry:
    folder = resources.files("diffana.stats") / "schemas" / version
    pairs = []
    for name in _SCHEMA_NAMES:
        contents = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        pairs.append((contents["$id"], referencing.Resource.from_contents(contents)))
    return referencing.Registry().with_resources(pairs)


def _is_array(checker: Any, instance: Any) -> bool:
    return isinstance(instance, list | np.ndarray)


def _is_number(checker: Any, instance: Any) -> bool:
    if isinstance(instance, bool | np.bool_):
        return False
    return isinstance(instance, numbers.Number | np.number)


_TYPES = jsonschema.Draft6Validator.TYPE_CHECKER.redefine("array", _is_array).redefine(
    "number", _is_number
)
_Validator = jsonschema.validators.extend(jsonschema.Draft6Validator, type_checker=_TYPES)


@functools.cache
def _validator(schema_name: str, version: str) -> jsonschema.protocols.Validator:
    base = f"https://scikit-hep.org/pyhf/schemas/{version}/"
    schema = {"$ref": f"{base}{schema_name}.json"}
    return _Validator(schema, registry=_registry(version))


def _check_version(version: Any, what: str) -> str:
    if version is None:
        return SCHEMA_VERSION
    if version not in SUPPORTED_VERSIONS:
        msg = f"unsupported {what} version"
        fix = f'diffana reads pyhf schema version {", ".join(SUPPORTED_VERSIONS)}: set "version": "{SCHEMA_VERSION}"'
        raise spec_error(msg, path=["version"], value=version, fix=fix)
    return version


def _modifier_error(err: jsonschema.ValidationError) -> jsonschema.ValidationError | str:
    """Explain a failed modifier ``anyOf``: unknown type, or the error of the matching type."""
    instance = err.instance
    if not isinstance(instance, Mapping):
        return "a modifier must be an object with keys name, type and data"
    mtype = instance.get("type")
    if mtype not in MODIFIER_TYPES:
        return f"unknown modifier type {mtype!r}; the valid types are {', '.join(MODIFIER_TYPES)}"
    branch = MODIFIER_TYPES.index(mtype)
    matching = [e for e in err.context or () if e.schema_path and e.schema_path[0] == branch]
    return jsonschema.exceptions.best_match(matching) if matching else err


def _explain(err: jsonschema.ValidationError) -> tuple[list[Any], Any, str]:
    path = list(err.absolute_path)
    if err.validator == "anyOf" and len(path) >= 2 and path[-2] == "modifiers":
        found = _modifier_error(err)
        if isinstance(found, str):
            return path, err.instance, found
        err = found
        path = list(err.absolute_path)
    return path, err.instance, err.message


def validate(spec: Any, schema_name: str, *, version: str | None = None, what: str = "") -> None:
    """Validate ``spec`` against pyhf's ``<schema_name>.json``; raise a WorkspaceError if not.

    Args:
        spec: a decoded JSON document (lists and NumPy arrays both count as arrays).
        schema_name: ``workspace``, ``model``, ``measurement``, ``patchset`` or ``jsonpatch``.
        version: the schema version; ``None`` means the spec's own ``version`` key, else 1.0.0.
        what: a word for the message ("workspace", "patched model", ...).

    Examples:
        >>> validate({"channels": [{"name": "c", "samples": []}]}, "model")
        Traceback (most recent call last):
        ...
        diffana.errors.WorkspaceError: at channels[0].samples: model violates the pyhf schema 1.0.0: [] should be non-empty (got []); ...
    """
    what = what or schema_name
    if version is None and isinstance(spec, Mapping):
        version = spec.get("version")
    version = _check_version(version, what)
    errors = list(_validator(schema_name, version).iter_errors(spec))
    if not errors:
        return
    path, value, message = _explain(jsonschema.exceptions.best_match(errors))
    fix = f"see https://scikit-hep.org/pyhf/likelihood.html for the {schema_name} format"
    if len(errors) > 1:
        fix = f"{len(errors) - 1} more violation(s) after this one; " + fix
    msg = f"{what} violates the pyhf schema {version}: {message}"
    raise spec_error(msg, path=path, value=value, fix=fix)
