"""A coffea-format fileset → chunks: (dataset, file, entry range) units of reading.

The fileset is coffea's dictionary (or a JSON file of it)::

    {"ttbar__nominal": {"files": {"a.root": "Events", ...}, "metadata": {"xsec": 729.84, ...}},
     "wjets__nominal": {"files": ["b.root"], "treename": "Events"},
     "other": ["c.root"]}

``files`` may also map a path to ``{"object_path": "Events", "num_entries": N, "uuid": ...}`` as
coffea's ``preprocess`` writes it. Entry counts come from uproot (one metadata read per file), in
parallel on the cluster when a ``distributed.Client`` is given. For each distinct tree layout
(branch names and types) one file's uproot form is made there too, as coffea's
``preprocess(save_form=True)`` does, so that the client builds NanoEvents without opening files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import uproot

from diffana.errors import DatasetError, InputFileError
from diffana.pipeline.readstats import CountingSource
from diffana.processors.base import Chunk

__all__ = [
    "ChunkedFileset",
    "FileInfo",
    "FileSpec",
    "chunk_fileset",
    "inspect_file",
    "normalize_fileset",
    "split_entries",
    "tree_form",
]


class FileSpec(NamedTuple):
    """One file of one dataset, before it is opened."""

    dataset: str
    file: str
    treename: str
    metadata: dict[str, Any]


class FileInfo(NamedTuple):
    """What opening a file tells: entries, content identity, size in bytes and tree layout.

    ``layout`` is a digest of the tree's branch names and types: files that share it share a form.
    """

    num_entries: int
    file_id: str
    size: int
    layout: str


class ChunkedFileset(NamedTuple):
    """A fileset in chunks: the good files' chunks, the bad files set aside, sizes and forms.

    ``forms`` maps a file to the JSON of uproot's form of its tree (the ``known_base_form`` of
    coffea's ``NanoEventsFactory.from_root``); a file missing from it is opened by whoever needs it.
    """

    chunks: list[Chunk]
    bad: list[tuple[FileSpec, InputFileError]]
    sizes: dict[str, int]
    forms: dict[str, str]


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


@contextmanager
def _opened_tree(spec: FileSpec) -> Iterator[Any]:
    """The file's tree, read through :class:`CountingSource` (counted, metadata kept)."""
    where = f"dataset {spec.dataset!r}, file {spec.file}"
    with uproot.open(spec.file, handler=CountingSource) as root:
        if spec.treename not in root:
            keys = sorted({k.split(";")[0] for k in root.keys(recursive=False)})
            msg = f"{where}: no tree {spec.treename!r} in the file (it has {keys}); fix the tree name in the fileset"
            raise InputFileError(msg)
        tree = root[spec.treename]
        if not isinstance(tree, uproot.TTree):
            msg = f"{where}: {spec.treename!r} is a {type(tree).__name__}, not a TTree"
            raise InputFileError(msg)
        yield tree


def inspect_file(spec: FileSpec) -> FileInfo:
    """Open one file and read its entry count, UUID, size and layout; errors name the dataset and file."""
    where = f"dataset {spec.dataset!r}, file {spec.file}"
    try:
        with _opened_tree(spec) as tree:
            types = json.dumps(sorted(tree.typenames().items()))
            layout = hashlib.sha256(types.encode()).hexdigest()[:16]
            return FileInfo(int(tree.num_entries), str(tree.file.uuid), int(tree.file.fEND), layout)
    except InputFileError:
        raise
    except FileNotFoundError as exc:
        msg = f"{where}: the file does not exist; fix the path in the fileset"
        raise InputFileError(msg) from exc
    except Exception as exc:  # uproot raises many types for a truncated or corrupt file
        reason = " ".join(str(exc).split())
        msg = f"{where}: cannot be read as ROOT ({type(exc).__name__}: {reason}); the file may be truncated or corrupt"
        raise InputFileError(msg) from exc


def tree_form(spec: FileSpec) -> str:
    """The JSON of uproot's form of the file's tree, made as coffea's NanoEvents makes it in dask mode.

    The options are those of ``NanoEventsFactory.from_root`` (branch titles and types as
    parameters, coffea's filter of the branches uproot can interpret), so the form can be given to
    it as ``known_base_form``.
    """
    from coffea.util import _is_interpretable  # the filter from_root applies

    with _opened_tree(spec) as tree:
        events = uproot.dask(
            tree,
            full_paths=True,
            ak_add_doc={"__doc__": "title", "typename": "typename"},
            filter_branch=partial(_is_interpretable, emit_warning=False),
        )
        return events.layout.form.to_json()


def _form_or_none(spec: FileSpec) -> str | None:
    # without a form the client opens the file itself (as it would without this step), where a
    # real problem with the file is raised with its name
    try:
        return tree_form(spec)
    except Exception:
        return None


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


def _map(client: Any, function: Any, items: list) -> list:
    if client is None:
        return [function(item) for item in items]
    return client.gather(client.map(function, items, pure=False))


def chunk_fileset(
    fileset: Mapping[str, Any] | str | Path | Sequence[FileSpec],
    chunk_size: int,
    *,
    treename: str = "Events",
    client: Any = None,
    skip_bad_files: bool = False,
) -> ChunkedFileset:
    """Chunks of every file; bad files raise, or with ``skip_bad_files`` are returned aside.

    The chunks are in fileset order. Files are opened on the cluster when ``client`` is given
    (once each for entries and layout, then once per distinct layout for its form).
    """
    specs = (
        fileset
        if isinstance(fileset, Sequence) and not isinstance(fileset, str)
        else normalize_fileset(fileset, treename)
    )
    infos = _map(client, _inspect_or_error, list(specs))
    chunks, bad, sizes, layouts = [], [], {}, {}
    for spec, info in zip(specs, infos, strict=True):
        if isinstance(info, InputFileError):
            if not skip_bad_files:
                raise info
            bad.append((spec, info))
            continue
        sizes[spec.file] = info.size
        layouts.setdefault(info.layout, spec)
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
    made = dict(zip(layouts, _map(client, _form_or_none, list(layouts.values())), strict=True))
    forms = {
        spec.file: made[info.layout]
        for spec, info in zip(specs, infos, strict=True)
        if not isinstance(info, InputFileError) and made[info.layout] is not None
    }
    return ChunkedFileset(chunks, bad, sizes, forms)
