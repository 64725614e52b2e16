"""What ``diffana histograms`` reads: a fileset, the AGC's file list, or a single ROOT file.

:func:`resolve_input` turns any of these into a coffea-format fileset whose every dataset has the
metadata an AGC-style processor needs (``process``, ``variation``, ``xsec`` in pb, ``nevts``):

* a ``.root`` file, local or a URL: one dataset ``PROCESS__VARIATION`` from the options
  (default ``ttbar__nominal``, the AGC cross-section of the process, ``nevts`` = the file's entries);
* a fileset JSON in coffea's format (or a folder holding ``fileset.json``, as ``diffana generate``
  writes it): files as a list or a mapping to tree names, paths relative to the JSON's folder, URLs
  as they are. Missing metadata is completed: ``process``/``variation`` from a dataset name
  ``PROCESS__VARIATION`` (else the name and ``nominal``), ``xsec`` from the AGC table, ``nevts`` as
  the entries of the dataset's files;
* the AGC's ``nanoaod_inputs.json`` (``{process: {variation: {"files": [{"path", "nevts"}],
  "nevts_total"}}}``): ``max_files`` files per dataset, ``nevts`` summed over the files taken, as
  the AGC's ``construct_fileset`` does.

``root://`` URLs need ``fsspec-xrootd`` and the XRootD Python bindings
(``pip install 'diffana[xrootd]'``); ``https://`` URLs are read through fsspec and aiohttp.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diffana.errors import ConfigError, DatasetError, InputFileError, missing_dependency
from diffana.pipeline.chunking import FileSpec, inspect_file, normalize_fileset

__all__ = ["agc_cross_sections", "resolve_input"]


def agc_cross_sections() -> dict[str, float]:
    """The AGC's cross-section (pb) of each process: ``{"ttbar": 729.84, ...}``."""
    from diffana.datasets.samples import SAMPLES

    return {s.process: s.xsec for s in SAMPLES.values()}


def _is_url(path: str) -> bool:
    return "://" in path


def _require_xrootd(files: list[str]) -> None:
    if not any(f.startswith("root://") for f in files):
        return
    try:
        import fsspec_xrootd  # noqa: F401
        import XRootD.client  # noqa: F401
    except ImportError as exc:
        package = "fsspec-xrootd with the XRootD Python bindings"
        raise missing_dependency(package, "xrootd") from exc


def _xsec(process: str, dataset: str) -> float:
    table = agc_cross_sections()
    if process not in table:
        msg = f"dataset {dataset!r}: no cross-section for process {process!r}; give metadata.xsec in the fileset (or --xsec for a ROOT file); the AGC's processes are {sorted(table)}"
        raise DatasetError(msg)
    return table[process]


def _entries(specs: list[FileSpec]) -> int:
    return sum(inspect_file(s).num_entries for s in specs)


def _agc_inputs(inputs: Mapping[str, Any], max_files: int | None, treename: str) -> dict:
    fileset = {}
    for process, variations in inputs.items():
        for variation, entry in variations.items():
            files = entry["files"][:max_files] if max_files else entry["files"]
            fileset[f"{process}__{variation}"] = {
                "files": {f["path"]: treename for f in files},
                "metadata": {
                    "process": process,
                    "variation": variation,
                    "xsec": _xsec(process, f"{process}__{variation}"),
                    "nevts": int(sum(f["nevts"] for f in files)),
                },
            }
    return fileset


def _looks_like_agc_inputs(data: Any) -> bool:
    if not isinstance(data, Mapping) or not data:
        return False
    first = next(iter(data.values()))
    return (
        isinstance(first, Mapping)
        and "files" not in first
        and all(isinstance(v, Mapping) and "nevts_total" in v for v in first.values())
    )


def _complete(specs: list[FileSpec]) -> dict:
    """A fileset with every dataset's metadata completed (see the module docstring)."""
    by_dataset: dict[str, list[FileSpec]] = {}
    for spec in specs:
        by_dataset.setdefault(spec.dataset, []).append(spec)
    fileset = {}
    for dataset, group in by_dataset.items():
        meta = dict(group[0].metadata)
        process, _, variation = dataset.partition("__")
        meta.setdefault("process", process)
        meta.setdefault("variation", variation or "nominal")
        if "xsec" not in meta and meta["process"] != "data":
            meta["xsec"] = _xsec(meta["process"], dataset)
        if "nevts" not in meta:
            meta["nevts"] = _entries(group)
        fileset[dataset] = {"files": {s.file: s.treename for s in group}, "metadata": meta}
    return fileset


def resolve_input(
    source: str | Path,
    *,
    process: str = "ttbar",
    variation: str = "nominal",
    xsec: float | None = None,
    nevts: int | None = None,
    max_files: int | None = None,
    treename: str = "Events",
) -> dict[str, dict[str, Any]]:
    """A coffea-format fileset with complete metadata from ``source`` (see the module docstring).

    ``process``, ``variation``, ``xsec`` and ``nevts`` describe a single ROOT file; ``max_files``
    limits the files per dataset of the AGC's file list.

    Raises:
        ConfigError: options that do not apply to this kind of input.
        InputFileError, DatasetError: a missing or malformed input.
        MissingDependencyError: ``root://`` URLs without XRootD support installed.
    """
    source = str(source)
    if source.endswith(".root"):
        if max_files is not None:
            msg = "--max-files applies to the AGC's file list (nanoaod_inputs.json), not to a single ROOT file"
            raise ConfigError(msg)
        if not _is_url(source) and not Path(source).is_file():
            msg = f"the ROOT file {source} does not exist; give an existing file, a fileset JSON or a URL"
            raise InputFileError(msg)
        _require_xrootd([source])
        dataset = f"{process}__{variation}"
        meta = {"process": process, "variation": variation}
        if process != "data":
            meta["xsec"] = float(xsec) if xsec is not None else _xsec(process, dataset)
        spec = FileSpec(dataset, source, treename, meta)
        meta["nevts"] = int(nevts) if nevts is not None else _entries([spec])
        return {dataset: {"files": {source: treename}, "metadata": meta}}
    if xsec is not None or nevts is not None:
        msg = "--xsec and --nevts describe a single ROOT file; for a fileset put xsec and nevts in each dataset's metadata"
        raise ConfigError(msg)
    path = Path(source)
    if path.is_dir():
        path = path / "fileset.json"
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}; give a ROOT file, a fileset JSON or a dataset folder"
        raise InputFileError(msg) from exc
    except json.JSONDecodeError as exc:
        msg = f"{path}: not valid JSON ({exc}); a fileset is a JSON object of datasets"
        raise DatasetError(msg) from exc
    if _looks_like_agc_inputs(data):
        fileset = _agc_inputs(data, max_files, treename)
    elif max_files is not None:
        msg = "--max-files applies to the AGC's file list (nanoaod_inputs.json); for a fileset, list the files you want"
        raise ConfigError(msg)
    else:
        fileset = _complete(normalize_fileset(path, treename))
    _require_xrootd([f for entry in fileset.values() for f in entry["files"]])
    return fileset
