"""Filesets in coffea's JSON format, as the AGC builds them: read, validate, write.

A fileset maps dataset names ``PROCESS__VARIATION`` to their files and metadata::

    {"ttbar__nominal": {
        "files": {"ttbar__nominal/ttbar__nominal_0.root": "Events"},
        "metadata": {"process": "ttbar", "variation": "nominal", "xsec": 729.84, "nevts": 500000}}}

``xsec`` is the cross-section in pb and ``nevts`` the number of generated events, so an event of
the dataset weighs ``xsec * lumi / nevts``. File paths may be absolute or relative to the folder of
the JSON file; :func:`load_fileset` returns them absolute, ready for coffea. A file's value is the
tree name, or coffea's ``{"object_path": ...}`` form.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diffana.errors import DatasetError, InputFileError

__all__ = ["FILESET_NAME", "event_weight", "load_fileset", "validate_fileset", "write_fileset"]

#: the file name of the fileset inside a generated dataset folder
FILESET_NAME = "fileset.json"
_REQUIRED = ("process", "variation", "xsec", "nevts")


def _fail(source: str, where: str, problem: str, fix: str) -> DatasetError:
    return DatasetError(f"{source}: {where} {problem}; {fix}")


def validate_fileset(fileset: Any, source: str = "fileset") -> None:
    """Check the structure of a fileset and raise :class:`DatasetError` naming what is wrong.

    Examples:
        >>> validate_fileset({"wjets__nominal": {"files": {"a.root": "Events"}, "metadata": {
        ...     "process": "wjets", "variation": "nominal", "xsec": 1.0, "nevts": 10}}})
        >>> validate_fileset({"wjets": {}})
        Traceback (most recent call last):
        ...
        diffana.errors.DatasetError: fileset: dataset 'wjets' is not named PROCESS__VARIATION; ...
    """
    if not isinstance(fileset, Mapping) or not fileset:
        raise _fail(
            source,
            "the top level",
            f"is {type(fileset).__name__} {fileset!r:.60}",
            "a fileset is a non-empty JSON object of datasets",
        )
    for name, entry in fileset.items():
        if not isinstance(name, str) or name.count("__") != 1 or not all(name.split("__")):
            raise _fail(
                source,
                f"dataset {name!r}",
                "is not named PROCESS__VARIATION",
                "e.g. 'ttbar__nominal'",
            )
        if not isinstance(entry, Mapping) or "files" not in entry or "metadata" not in entry:
            keys = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
            raise _fail(
                source,
                f"dataset {name!r}",
                f"has {keys}",
                "each dataset needs 'files' and 'metadata'",
            )
        files = entry["files"]
        if not isinstance(files, Mapping) or not files:
            raise _fail(
                source,
                f"{name}.files",
                f"is {files!r:.60}",
                "give a non-empty object {path: tree name}",
            )
        for path, tree in files.items():
            if not (isinstance(tree, str) or (isinstance(tree, Mapping) and "object_path" in tree)):
                raise _fail(
                    source,
                    f"{name}.files[{path!r}]",
                    f"is {tree!r:.60}",
                    "give the tree name, e.g. 'Events'",
                )
        meta = entry["metadata"]
        missing = [k for k in _REQUIRED if not isinstance(meta, Mapping) or k not in meta]
        if missing:
            raise _fail(
                source, f"{name}.metadata", f"lacks {missing}", f"give all of {list(_REQUIRED)}"
            )
        process, variation = name.split("__")
        if (meta["process"], meta["variation"]) != (process, variation):
            raise _fail(
                source,
                f"{name}.metadata",
                f"says process {meta['process']!r}, variation {meta['variation']!r}",
                "make them match the dataset name",
            )
        xsec, nevts = meta["xsec"], meta["nevts"]
        if (
            isinstance(xsec, bool)
            or not isinstance(xsec, int | float)
            or not math.isfinite(xsec)
            or xsec <= 0
        ):
            raise _fail(
                source,
                f"{name}.metadata.xsec",
                f"is {xsec!r}",
                "give the cross-section in pb, a positive number",
            )
        if isinstance(nevts, bool) or not isinstance(nevts, int) or nevts <= 0:
            raise _fail(
                source,
                f"{name}.metadata.nevts",
                f"is {nevts!r}",
                "give the number of generated events, a positive integer",
            )


def load_fileset(path: str | os.PathLike, *, check_files: bool = True) -> dict[str, dict]:
    """Read and validate a fileset JSON file; relative file paths become absolute.

    Args:
        path: the JSON file, or a dataset folder written by ``diffana generate``.
        check_files: raise :class:`~diffana.errors.InputFileError` if a listed file is missing.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILESET_NAME
    try:
        text = path.read_text()
    except OSError as exc:
        msg = f"cannot read the fileset {path}: {exc.strerror or exc}; give a fileset JSON file or a folder written by 'diffana generate'"
        raise InputFileError(msg) from exc
    try:
        fileset = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{path}: not valid JSON ({exc}); a fileset is a JSON object of datasets"
        raise DatasetError(msg) from exc
    validate_fileset(fileset, str(path))
    out = {}
    for name, entry in fileset.items():
        files = {}
        for file, tree in entry["files"].items():
            resolved = file if "://" in file else str((path.parent / file).resolve())
            if check_files and "://" not in file and not Path(resolved).is_file():
                msg = f"{path}: dataset {name!r} lists {file!r}, which does not exist ({resolved}); regenerate the dataset or fix the path"
                raise InputFileError(msg)
            files[resolved] = tree
        out[name] = {**entry, "files": files, "metadata": dict(entry["metadata"])}
    return out


def write_fileset(path: str | os.PathLike, fileset: Mapping[str, Mapping]) -> None:
    """Validate ``fileset`` and write it as indented JSON (paths are written as given)."""
    validate_fileset(fileset, str(path))
    Path(path).write_text(json.dumps(fileset, indent=2) + "\n")


def event_weight(metadata: Mapping[str, Any], lumi: float) -> float:
    """The weight of one event of a dataset: ``xsec * lumi / nevts``.

    Examples:
        >>> event_weight({"xsec": 729.84, "nevts": 1000}, 3378.0)
        2465.39952
    """
    return float(metadata["xsec"]) * lumi / float(metadata["nevts"])
