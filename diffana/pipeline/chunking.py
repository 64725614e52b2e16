"""A coffea-format fileset → chunks: (dataset, file, entry range) units of reading.

The fileset is coffea's dictionary (or a JSON file of it)::

    {"ttbar__nominal": {"files": {"a.root": "Events", ...}, "metadata": {"xsec": 729.84, ...}},
     "wjets__nominal": {"files": ["b.root"], "treename": "Events"},
     "other": ["c.root"]}

``files`` may also map a path to ``{"object_path": "Events", "num_entries": N, "uuid": ...}`` as
coffea's ``preprocess`` writes it. Entry counts come from uproot (one small metadata read per file),
in parallel on the cluster when a ``distributed.Client`` is given.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import uproot

from diffana.errors import DatasetError, InputFileError
from diffana.processors.base import Chunk

__all__ = [
    "FileInfo",
    "FileSpec",
    "chunk_fileset",
    "inspect_file",
    "normalize_fileset",
    "split_entries",
]


class FileSpec(NamedTuple):
    """One file of one dataset, before it is opened."""

    dataset: str
    file: str
    treename: str
    metadata: dict[str, Any]


class FileInfo(NamedTuple):
    """What opening a file tells: entries, content identity and size in bytes."""

    num_entries: int
    file_id: str
    size: int


def normalize_fileset(
    fileset: Mapping[str, Any] | str | Path, treename: str = "Events"
) -> list[FileSpec]:
    """Every file of a coffea-format fileset (a mapping or the path of its JSON file).

    Relative paths in a JSON file are taken relative to the file's folder.

    Examples:
        >>> [tuple(f) for f in normalize_fileset({"tt": {"files": {"a.root": "Events"}, "metadata": {"xsec": 1.0}}})]
        [('tt', 'a.root', 'Events', {'xsec': 1.0})]
    """
    base = None
    if isinstance(fileset, str | Path):
        path = Path(fileset)
        try:
            fileset = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"cannot read the fileset {path}: {exc}"
            raise DatasetError(msg) from exc
        base = path.parent
    if not isinstance(fileset, Mapping) or not fileset:
        msg = f"a fileset must be a non-empty mapping of dataset name to files, got {type(fileset).__name__}"
        raise DatasetError(msg)
    out = []
    for dataset, entry in fileset.items():
        default_tree, metadata = treename, {}
        files: Any = entry
        if isinstance(entry, Mapping):
            if "files" not in entry:
                msg = f"dataset {dataset!r} has no 'files' (keys: {sorted(entry)}); give {{'files': [...]}}"
                raise DatasetError(msg)
            files, metadata = entry["files"], dict(entry.get("metadata") or {})
            default_tree = entry.get("treename", treename)
        if isinstance(files, str) or not isinstance(files, Mapping | Sequence):
            msg = f"dataset {dataset!r}: 'files' must be a list of paths or a mapping path -> tree name, got {files!r}"
            raise DatasetError(msg)
        items = files.items() if isinstance(files, Mapping) else ((f, None) for f in files)
        for file, tree in items:
            if isinstance(tree, Mapping):
                tree = tree.get("object_path")
            file = str(file)
            if base is not None and "://" not in file and not Path(file).is_absolute():
                file = str(base / file)
            out.append(FileSpec(str(dataset), file, tree or default_tree, metadata))
    return out


def inspect_file(spec: FileSpec) -> FileInfo:
    """Open one file and read its entry count, UUID and size; errors name the dataset and file."""
    where = f"dataset {spec.dataset!r}, file {spec.file}"
    try:
        with uproot.open(spec.file) as root:
            if spec.treename not in root:
                keys = sorted({k.split(";")[0] for k in root.keys(recursive=False)})
                msg = f"{where}: no tree {spec.treename!r} in the file (it has {keys}); fix the tree name in the fileset"
                raise InputFileError(msg)
            tree = root[spec.treename]
            if not isinstance(tree, uproot.TTree):
                msg = f"{where}: {spec.treename!r} is a {type(tree).__name__}, not a TTree"
                raise InputFileError(msg)
            return FileInfo(int(tree.num_entries), str(root.file.uuid), int(root.file.fEND))
    except InputFileError:
        raise
    except FileNotFoundError as exc:
        msg = f"{where}: the file does not exist; fix the path in the fileset"
        raise InputFileError(msg) from exc
    except Exception as exc:  # uproot raises many types for a truncated or corrupt file
        reason = " ".join(str(exc).split())
        msg = f"{where}: cannot be read as ROOT ({type(exc).__name__}: {reason}); the file may be truncated or corrupt"
        raise InputFileError(msg) from exc


def _inspect_or_error(spec: FileSpec) -> FileInfo | InputFileError:
    try:
        return inspect_file(spec)
    except InputFileError as exc:
        return exc


def split_entries(num_entries: int, chunk_size: int) -> list[tuple[int, int]]:
    """Split ``num_entries`` into near-equal ranges of at most ``chunk_size`` entries.

    Examples:
        >>> split_entries(10, 4)
        [(0, 3), (3, 6), (6, 10)]
    """
    if chunk_size < 1:
        msg = f"chunk_size must be a positive number of entries, got {chunk_size}"
        raise DatasetError(msg)
    n = -(-num_entries // chunk_size)
    bounds = [i * num_entries // n for i in range(n + 1)] if n else [0]
    return list(itertools.pairwise(bounds))


def chunk_fileset(
    fileset: Mapping[str, Any] | str | Path | Sequence[FileSpec],
    chunk_size: int,
    *,
    treename: str = "Events",
    client: Any = None,
    skip_bad_files: bool = False,
) -> tuple[list[Chunk], list[tuple[FileSpec, InputFileError]], dict[str, int]]:
    """Chunks of every file; bad files raise, or with ``skip_bad_files`` are returned aside.

    Returns:
        ``(chunks, bad_files, file_sizes)``: the chunks in fileset order, the skipped files with
        their errors, and the size in bytes of every good file.
    """
    specs = (
        fileset
        if isinstance(fileset, Sequence) and not isinstance(fileset, str)
        else normalize_fileset(fileset, treename)
    )
    if client is not None:
        infos = client.gather(client.map(_inspect_or_error, specs, pure=False))
    else:
        infos = [_inspect_or_error(spec) for spec in specs]
    chunks, bad, sizes = [], [], {}
    for spec, info in zip(specs, infos, strict=True):
        if isinstance(info, InputFileError):
            if not skip_bad_files:
                raise info
            bad.append((spec, info))
            continue
        sizes[spec.file] = info.size
        metadata = {
            **spec.metadata,
            "dataset": spec.dataset,
            "filename": spec.file,
            "treename": spec.treename,
        }
        for start, stop in split_entries(info.num_entries, chunk_size):
            chunks.append(
                Chunk(spec.dataset, spec.file, spec.treename, start, stop, metadata, info.file_id)
            )
    return chunks, bad, sizes
