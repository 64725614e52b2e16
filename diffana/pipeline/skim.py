"""Phase 1, the skim: NanoEvents in dask mode → ``processor.skim`` per partition → column blocks.

For each file the chunks become the partitions of one coffea NanoEvents collection in dask mode
(``NanoEventsFactory.from_root(..., mode="dask")`` with one step per chunk);
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

__all__ = ["compute_blocks", "necessary_columns", "skim_collections", "skim_tasks"]


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


def _group_by_file(chunks: Iterable[Chunk]) -> dict[tuple[str, str, str], list[Chunk]]:
    groups: dict[tuple[str, str, str], list[Chunk]] = {}
    for chunk in chunks:
        groups.setdefault((chunk.dataset, chunk.file, chunk.treename), []).append(chunk)
    return groups


def skim_collections(
    processor: Processor,
    chunks: Sequence[Chunk],
    *,
    uproot_options: Mapping[str, Any] | None = None,
    errors: list[tuple[list[Chunk], InputFileError]] | None = None,
    forms: Mapping[str, str] | None = None,
) -> list[tuple[list[Chunk], dak.Array]]:
    """One dask-awkward collection of packed skim output per file, one partition per chunk.

    ``forms`` maps a file to the JSON of its tree's uproot form (``ChunkedFileset.forms``); a file
    without one is opened here to read it. A file whose structure cannot be read raises
    :class:`~diffana.errors.InputFileError`, or is appended to ``errors`` with its chunks when a
    list is given.
    """
    from coffea.nanoevents import NanoEventsFactory

    options = {"handler": CountingSource, **(uproot_options or {})}
    parsed: dict[str, Any] = {}  # files of one layout share a form
    out = []
    for (_, file, treename), group in _group_by_file(chunks).items():
        steps = [[c.entry_start, c.entry_stop] for c in group]
        form = (forms or {}).get(file)
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
                    {file: {"object_path": treename, "steps": steps}},
                    metadata=dict(group[0].metadata),
                    schemaclass=_schema(processor),
                    mode="dask",
                    uproot_options=options,
                    known_base_form=None if form is None else parsed[form],
                ).events()
        except Exception as exc:
            msg = f"dataset {group[0].dataset!r}, file {file}: cannot build NanoEvents ({type(exc).__name__}: {exc})"
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
