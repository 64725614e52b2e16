"""Phase 1, the skim: NanoEvents in dask mode → ``processor.skim`` per partition → column blocks.

For each dataset the chunks of its files become the partitions of one coffea NanoEvents collection
in dask mode (``NanoEventsFactory.from_root(..., mode="dask")`` over the dataset's files, one step
per chunk; files of different tree layouts, or whose layout is not known, get a collection each);
``dask_awkward.map_partitions`` applies the processor's skim to each partition, so dask-awkward's
column optimisation traces the skim on typetracers and reads only the branches it touches
(:func:`necessary_columns` shows them). Each partition then becomes a :class:`ChunkBlocks` of dense
numpy arrays by a ``dask.delayed`` task; the engine persists those tasks on the workers. Files are
opened with :class:`~diffana.pipeline.readstats.CountingSource`, so the bytes read are measured and
a worker reads a file's tree metadata once for all its chunks. Given the files' forms
(:class:`~diffana.pipeline.chunking.ChunkedFileset`), the collections are built without opening
any file here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import awkward as ak
import dask
import dask_awkward as dak

from diffana.errors import InputFileError
from diffana.pipeline.blocks import DEFAULT_SLAB, ChunkBlocks, pack_skim, unpack_skim
from diffana.pipeline.readstats import CountingSource
from diffana.processors.base import Chunk, Processor

__all__ = ["compute_blocks", "group_chunks", "necessary_columns", "skim_collections", "skim_tasks"]


def _schema(processor: Processor) -> Any:
    schema = getattr(processor, "schemaclass", None)
    if schema is None:
        from coffea.nanoevents import NanoAODSchema

        schema = NanoAODSchema
    return schema


class _SkimPartition:
    """The function mapped over partitions: the processor's skim, packed into one awkward array."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    def __call__(self, events: Any) -> Any:
        return pack_skim(self.processor.skim(events))


def group_chunks(
    chunks: Iterable[Chunk], forms: Mapping[str, str] | None = None
) -> list[list[Chunk]]:
    """The chunks of each collection: a dataset's files of one known tree layout together (in
    file order, then entry order), a file of unknown layout alone.

    One collection per dataset rather than per file: building a collection and its column
    optimisation (a typetracer pass of the skim) cost the client ~0.1 s each, on the cores the
    workers read with.
    """
    groups: dict[tuple[str, str, str], list[Chunk]] = {}
    for chunk in chunks:
        form = (forms or {}).get(chunk.file)
        layout = f"form:{form}" if form is not None else f"file:{chunk.file}"
        groups.setdefault((chunk.dataset, chunk.treename, layout), []).append(chunk)
    for key, group in groups.items():
        order = {f: i for i, f in enumerate(dict.fromkeys(c.file for c in group))}
        groups[key] = sorted(group, key=lambda c: (order[c.file], c.entry_start))
    return list(groups.values())


def _metadata(group: Sequence[Chunk]) -> dict[str, Any]:
    """The collection's ``events.metadata``: the dataset's, with ``dataset`` and ``treename``."""
    return {k: v for k, v in group[0].metadata.items() if k != "filename"}


def skim_collections(
    processor: Processor,
    chunks: Sequence[Chunk],
    *,
    uproot_options: Mapping[str, Any] | None = None,
    errors: list[tuple[list[Chunk], InputFileError]] | None = None,
    forms: Mapping[str, str] | None = None,
) -> list[tuple[list[Chunk], dak.Array]]:
    """Dask-awkward collections of packed skim output (:func:`group_chunks`), one partition per chunk.

    ``forms`` maps a file to the JSON of its tree's uproot form (``ChunkedFileset.forms``); a file
    without one is opened here to read it. A collection whose structure cannot be read raises
    :class:`~diffana.errors.InputFileError`, or is appended to ``errors`` with its chunks when a
    list is given.
    """
    from coffea.nanoevents import NanoEventsFactory

    options = {"handler": CountingSource, **(uproot_options or {})}
    parsed: dict[str, Any] = {}  # files of one layout share a form
    out = []
    for group in group_chunks(chunks, forms):
        treename = group[0].treename
        files: dict[str, Any] = {}
        for c in group:
            files.setdefault(c.file, {"object_path": treename, "steps": []})["steps"].append(
                [c.entry_start, c.entry_stop]
            )
        form = (forms or {}).get(group[0].file)
        if form is not None and form not in parsed:
            parsed[form] = ak.forms.from_json(form)
        try:
            with warnings.catch_warnings():
                # NanoAODSchema warns about cross-references of collections a skim never touches
                warnings.filterwarnings(
                    "ignore", message="Missing cross-reference", category=RuntimeWarning
                )
                warnings.filterwarnings(
                    "ignore", message="Branch .* already exists", category=RuntimeWarning
                )
                events = NanoEventsFactory.from_root(
                    files,
                    metadata=_metadata(group),
                    schemaclass=_schema(processor),
                    mode="dask",
                    uproot_options=options,
                    known_base_form=None if form is None else parsed[form],
                ).events()
        except Exception as exc:
            where = ", ".join(files)
            msg = f"dataset {group[0].dataset!r}, file {where}: cannot build NanoEvents ({type(exc).__name__}: {exc})"
            if errors is None:
                raise InputFileError(msg) from exc
            errors.append((group, InputFileError(msg)))
            continue
        packed = dak.map_partitions(_SkimPartition(processor), events, label="diffana-skim")
        out.append((group, packed))
    return out


def skim_tasks(
    processor: Processor,
    collections: Sequence[tuple[list[Chunk], dak.Array]],
    *,
    slab: int | None = DEFAULT_SLAB,
) -> list[Any]:
    """One ``dask.delayed`` task per chunk, in the order of ``collections``, returning its blocks."""
    tasks = []
    fingerprint = processor.fingerprint()
    for group, packed in collections:
        parts = packed.to_delayed(optimize_graph=True)
        for chunk, part in zip(group, parts, strict=True):
            key = f"diffana-blocks-{dask.base.tokenize(chunk, chunk.file_id, fingerprint, slab)}"
            unpack = dask.delayed(unpack_skim, pure=True)
            tasks.append(
                unpack(part, chunk, prepare=processor.prepare, slab=slab, dask_key_name=key)
            )
    return tasks


def necessary_columns(collections: Sequence[tuple[list[Chunk], dak.Array]]) -> frozenset[str]:
    """The branches the skim reads, from dask-awkward's column optimisation (one file per dataset)."""
    seen: set[str] = set()
    columns: set[str] = set()
    for group, packed in collections:
        if group[0].dataset in seen:
            continue
        seen.add(group[0].dataset)
        for cols in dak.report_necessary_columns(packed).values():
            columns |= set(cols or ())
    return frozenset(columns)


def compute_blocks(task: Any) -> ChunkBlocks:
    """Run one chunk's task in this process (the in-process executor)."""
    with warnings.catch_warnings():
        # deliberate: in-process execution even while some distributed.Client is the default
        warnings.filterwarnings(
            "ignore", message="Running on a single-machine scheduler", category=UserWarning
        )
        (result,) = dask.compute(task, scheduler="sync")
    return result
