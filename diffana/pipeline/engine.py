"""The engine: skim once, then evaluate histograms and gradients over blocks held by the workers.

Examples:
    A typical optimisation loop (``proc`` a :class:`~diffana.processors.base.Processor`)::

        with Engine(proc, "fileset.json", cluster="local", chunk_size=100_000) as engine:
            engine.skim()                                   # phase 1: read once
            step = engine.value_and_grad(objective)         # objective: {name: SoftHistogram} -> scalar
            value, grads = step({"jet_pt": 30.0, ...})      # phase 2: kernels over worker-held blocks
            hard = engine.hard_histograms(params)           # {name: hist.Hist}
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import dask
import distributed
import jax
import numpy as np
import uproot

from diffana.errors import ChunkError, ConfigError
from diffana.pipeline.blocks import DEFAULT_SLAB, slab_rows
from diffana.pipeline.cache import BlockCache
from diffana.pipeline.chunking import chunk_fileset
from diffana.pipeline.cluster import connect
from diffana.pipeline.evaluate import (
    Kind,
    Partial,
    balanced_placement,
    evaluate_chunk,
    evaluate_group,
    merge,
    param_vector,
    tree_sum,
)
from diffana.pipeline.histogram import SoftHistogram
from diffana.pipeline.progress import SkimProgress
from diffana.pipeline.readstats import ReadTotals, read_totals, reset_read_totals
from diffana.pipeline.report import RunReport, SkippedChunk, StepTiming
from diffana.pipeline.skim import (
    compute_blocks,
    group_chunks,
    necessary_columns,
    skim_collections,
    skim_tasks,
)
from diffana.processors.base import Chunk, Processor

__all__ = ["BAD_FILE_ERRORS", "Engine", "Jacobian"]

#: Errors that mean "this chunk's input is bad" and that ``skip_bad_files`` may skip.
BAD_FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    uproot.deserialization.DeserializationError,
    uproot.KeyInFileError,
)


class Jacobian(NamedTuple):
    """Derivatives of one histogram: last axis runs over the parameters (``Engine.parameter_names``)."""

    sumw: np.ndarray
    sumw2: np.ndarray


def _stats(blocks: Any) -> tuple[dict[str, int], int]:
    return dict(blocks.kept), blocks.nbytes


def _same(blocks: Any) -> Any:
    """A chunk's blocks as they are: the task that moves them to another worker."""
    return blocks


class Engine:
    """Two-phase execution of a processor over a fileset on a Dask cluster (or in process).

    Args:
        processor: the :class:`~diffana.processors.base.Processor`.
        fileset: coffea-format fileset (mapping or JSON path).
        cluster: anything :func:`diffana.pipeline.cluster.connect` accepts (``None``: in process).
        chunk_size: entries per chunk (the unit of reading and of worker memory).
        treename: tree of files that do not name one.
        cache: folder of the on-disk block cache, or ``None``.
        skip_bad_files: skip chunks whose input is missing, truncated or unreadable (they are listed
            in :attr:`report`) instead of raising :class:`~diffana.errors.ChunkError`.
        retries: extra attempts of a failing task before it counts as failed.
        progress: show a rich progress bar during the skim.
        mode: ``"forward"``, ``"reverse"`` or ``"auto"`` for gradients (see :meth:`gradient_mode`).
        forward_max_params: with ``"auto"``, the most parameters for which forward mode is chosen.
        uproot_options: extra options for ``uproot.open`` in the skim.
        block_size: events per slab, the one event-axis length the kernels are compiled for
            (blocks are padded to whole slabs; larger slabs mean fewer kernel calls, more padding).
        keep: ``"memory"`` holds the blocks in worker memory (Dask spills them when memory is
            short); ``"disk"`` writes them to ``cache`` and every step loads one chunk at a time,
            so worker memory is set by the chunk size, not by the dataset (needs ``cache``).
    """

    def __init__(
        self,
        processor: Processor,
        fileset: Any,
        *,
        cluster: Any = None,
        chunk_size: int = 100_000,
        treename: str = "Events",
        cache: str | Path | None = None,
        skip_bad_files: bool = False,
        retries: int = 1,
        progress: bool = False,
        mode: Literal["auto", "forward", "reverse"] = "auto",
        forward_max_params: int = 8,
        uproot_options: Mapping[str, Any] | None = None,
        keep: Literal["memory", "disk"] = "memory",
        block_size: int = DEFAULT_SLAB,
    ) -> None:
        if block_size < 1:
            msg = f"block_size must be a positive number of events, got {block_size}"
            raise ConfigError(msg)
        self.block_size = block_size
        if keep not in ("memory", "disk") or (keep == "disk" and cache is None):
            msg = f"keep must be 'memory' or 'disk' (with a cache folder), got keep={keep!r}, cache={cache!r}"
            raise ConfigError(msg)
        self.keep = keep
        if mode not in ("auto", "forward", "reverse"):
            msg = f"mode must be 'auto', 'forward' or 'reverse', got {mode!r}"
            raise ConfigError(msg)
        self.processor, self.fileset, self.chunk_size, self.treename = (
            processor,
            fileset,
            chunk_size,
            treename,
        )
        self.cache = BlockCache(cache) if cache is not None else None
        self.skip_bad_files, self.retries, self.progress, self.mode = (
            skip_bad_files,
            retries,
            progress,
            mode,
        )
        self.forward_max_params, self.uproot_options = (
            forward_max_params,
            dict(uproot_options or {}),
        )
        self.fingerprint = processor.fingerprint()
        self._cache_key = f"{self.fingerprint}-{block_size}"  # cached blocks are padded to slabs
        self._connection = connect(cluster)
        self.client = self._connection.client
        self.report = RunReport(dashboard=self._connection.dashboard_link)
        self._blocks: list[Any] = []
        self._chunks: list[Chunk] = []
        self._skimmed = False
        self._compiled: set[tuple[Kind, bool]] = set()
        self._costs: list[int] = []
        self._plan: list[str | None] = []  # the worker of each chunk's share (see _balance)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.processor.parameter_names

    @property
    def chunks(self) -> list[Chunk]:
        """The chunks whose blocks are held (skipped chunks excluded)."""
        return list(self._chunks)

    # ---------------------------------------------------------------- phase 1
    def skim(self) -> RunReport:
        """Read every chunk once into blocks held by the workers (or this process); fill the report."""
        start = time.perf_counter()
        self.release()
        self._reset_counters()
        chunks, bad, sizes, forms = chunk_fileset(
            self.fileset,
            self.chunk_size,
            treename=self.treename,
            client=self.client,
            skip_bad_files=self.skip_bad_files,
        )
        report = RunReport(dashboard=self._connection.dashboard_link, chunks=len(chunks) + len(bad))
        report.file_bytes = sum(sizes.values())
        report.skipped += [
            SkippedChunk(s.dataset, s.file, None, None, None, str(e)) for s, e in bad
        ]
        cached = {
            c: None for c in chunks if self.cache is not None and (c, self._cache_key) in self.cache
        }  # in chunk order
        branches: set[str] = set()
        batches = self._skim_batches(chunks, cached, forms, report, branches)
        with SkimProgress(len(chunks), enabled=self.progress, dashboard=report.dashboard) as bar:
            results = self._run_skim(batches, report, bar)
        order = {c: i for i, c in enumerate(chunks)}
        results.sort(key=lambda item: order[item[0]])
        report.branches = tuple(sorted(branches))
        totals = self._collect_counters()
        self._chunks = [c for c, _ in results]
        self._blocks = [b for _, b in results]
        if self.client is None:
            stats = [_stats(b) for b in self._blocks]
        else:
            stats = self.client.gather(self.client.map(_stats, self._blocks, pure=False))
        report.chunks_done = len(results)
        report.chunks_from_cache = sum(1 for c in self._chunks if c in cached)
        report.events_read = sum(c.num_entries for c in self._chunks)
        report.events_kept = sum(kept.get("nominal", 0) for kept, _ in stats)
        report.blocks = sum(len(kept) for kept, _ in stats)
        report.block_bytes = sum(nbytes for _, nbytes in stats)
        # the work of a chunk in every step: its slabs (blocks are padded to whole slabs)
        self._costs = [
            sum(slab_rows(n, self.block_size) for n in kept.values()) for kept, _ in stats
        ]
        if self.client is not None:
            self._balance()
        report.bytes_read, report.read_requests = totals
        report.skim_seconds = time.perf_counter() - start
        self.report = report
        self._skimmed = True
        return report

    def _failed(self, chunk: Chunk, exc: BaseException, report: RunReport) -> None:
        if self.skip_bad_files and isinstance(exc, BAD_FILE_ERRORS):
            error = f"{type(exc).__name__}: {exc}"
            report.skipped.append(
                SkippedChunk(
                    chunk.dataset,
                    chunk.file,
                    chunk.entry_start,
                    chunk.entry_stop,
                    chunk.num_entries,
                    error,
                )
            )
            return
        hint = (
            "; pass skip_bad_files=True to skip unreadable chunks"
            if isinstance(exc, BAD_FILE_ERRORS)
            else ""
        )
        msg = f"{chunk}: {type(exc).__name__}: {exc}{hint}"
        raise ChunkError(msg) from exc

    def _skim_batches(
        self,
        chunks: Sequence[Chunk],
        cached: Mapping[Chunk, None],
        forms: Mapping[str, str],
        report: RunReport,
        branches: set[str],
    ) -> Iterator[list[tuple[Chunk, Any]]]:
        """The skim's tasks, a collection (a dataset's files) at a time, so that the workers start
        reading the first dataset while this process builds the next one's graph. Chunks of
        collections that cannot be built are skipped into ``report``; the branches read are added
        to ``branches`` (one column report per dataset)."""
        key = self._cache_key
        if cached:
            if self.keep == "disk":
                get = dask.delayed(self.cache.reference_existing)
            else:
                get = dask.delayed(self.cache.load, pure=True)
            yield [(c, get(c, key)) for c in cached]
        reported: set[str] = set()
        for group in group_chunks([c for c in chunks if c not in cached], forms):
            unreadable: list[tuple[list[Chunk], Any]] = []
            collections = skim_collections(
                self.processor,
                group,
                uproot_options=self.uproot_options,
                errors=unreadable if self.skip_bad_files else None,
                forms=forms,
            )
            for bad, error in unreadable:
                report.skipped += [
                    SkippedChunk(
                        c.dataset, c.file, c.entry_start, c.entry_stop, c.num_entries, str(error)
                    )
                    for c in bad
                ]
                yield [(c, None) for c in bad]
            if not collections:
                continue
            tasks = skim_tasks(self.processor, collections, slab=self.block_size)
            if self.keep == "disk":
                reference = dask.delayed(self.cache.reference, pure=True)
                tasks = [reference(t, key) for t in tasks]
            elif self.cache is not None:
                store = dask.delayed(self.cache.store, pure=True)
                tasks = [store(t, key) for t in tasks]
            yield list(zip(group, tasks, strict=True))
            if group[0].dataset not in reported:  # while the workers read
                reported.add(group[0].dataset)
                branches |= necessary_columns(collections)

    def _run_skim(
        self,
        batches: Iterable[list[tuple[Chunk, Any]]],
        report: RunReport,
        bar: SkimProgress,
    ) -> list[tuple[Chunk, Any]]:
        """Run the batches' tasks (a task of ``None``: a chunk skipped before it was read)."""
        done: list[tuple[Chunk, Any]] = []
        if self.client is None:
            for batch in batches:
                for chunk, task in batch:
                    if task is None:
                        bar.advance(0)
                        continue
                    for attempt in range(self.retries + 1):
                        try:
                            done.append((chunk, compute_blocks(task)))
                            break
                        except Exception as exc:
                            if attempt == self.retries:
                                self._failed(chunk, exc, report)
                    bar.advance(chunk.num_entries)
            return done
        from distributed import as_completed

        submitted: list[tuple[Chunk, Any]] = []
        pending = as_completed()
        try:
            # each batch is submitted as soon as its graph is built
            for batch in batches:
                for _ in (c for c, t in batch if t is None):
                    bar.advance(0)
                batch = [(c, t) for c, t in batch if t is not None]
                futures = self.client.compute([t for _, t in batch], retries=self.retries)
                submitted += zip((c for c, _ in batch), futures, strict=True)
                pending.update(futures)
            chunk_of = {f.key: c for c, f in submitted}
            failed: set[Any] = set()
            for future in pending:
                if future.status == "error":
                    failed.add(future.key)
                    self._failed(chunk_of[future.key], future.exception(), report)
                bar.advance(chunk_of[future.key].num_entries)
        except BaseException:
            self.client.cancel([f for _, f in submitted])
            raise
        return [(c, f) for c, f in submitted if f.key not in failed]

    def _reset_counters(self) -> None:
        reset_read_totals()
        if self.client is not None:
            self.client.run(reset_read_totals)

    def _collect_counters(self) -> ReadTotals:
        total = read_totals()
        if self.client is not None:
            for worker_total in self.client.run(read_totals).values():
                total = total + worker_total
        return total

    def release(self) -> None:
        """Drop the blocks held by the workers (the next evaluation skims again)."""
        if self.client is not None and self._blocks:
            self.client.cancel(self._blocks)
        self._blocks, self._chunks, self._costs, self._plan = [], [], [], []
        self._skimmed = False

    # ---------------------------------------------------------------- phase 2
    def _run(
        self, kind: Kind, params: Mapping[str, float] | None, hardness: float, cotangent: Any = None
    ) -> Partial:
        if not (hardness > 0):
            msg = f"hardness must be positive (math.inf for the hard pass), got {hardness}"
            raise ConfigError(msg)
        theta = param_vector(self.processor, params)
        if not self._skimmed:
            self.skim()
        if not self._blocks:
            msg = "no chunk produced a block: every chunk was skipped; see engine.report.skipped"
            raise ChunkError(msg)
        start = time.perf_counter()
        args = {
            "fingerprint": self.fingerprint,
            "theta": theta,
            "hardness": float(hardness),
            "kind": kind,
            "cotangent": cotangent,
        }
        if self.client is None:
            partials = [evaluate_chunk(b, self.processor, **args) for b in self._blocks]
            total = tree_sum(partials, merge)
        else:
            total = self._run_on_workers(args)
        self.report.steps.append(StepTiming(kind, time.perf_counter() - start, total.events))
        return total

    def _run_on_workers(self, args: dict[str, Any]) -> Partial:
        """One task per worker over its share of the chunks (:attr:`_plan`), each share summed on
        its worker, the shares summed here in a fixed order.

        A task per chunk and a tree of merge tasks cost the scheduler and the client a round trip
        per chunk and per merge, on the cores the workers use (two workers then ran a step 1.5x
        faster than one, not 2x).
        """
        client = self.client
        options = {"processor": self.processor, "pure": False, "retries": self.retries, **args}
        # (the processor is not scattered: scattered data has no lineage)
        items: list[Any] = list(self._blocks)
        if self._compile_first(args["kind"], args["hardness"]):
            items[0] = client.submit(evaluate_chunk, items[0], **options)
            distributed.wait(items[:1])
        shares: dict[str | None, list[Any]] = {}
        for item, worker in zip(items, self._plan, strict=True):
            shares.setdefault(worker, []).append(item)
        futures = [
            client.submit(
                evaluate_group,
                share,
                workers=None if worker is None else [worker],
                allow_other_workers=True,  # a lost worker's share runs elsewhere
                **options,
            )
            for worker, share in shares.items()
        ]
        return tree_sum(client.gather(futures), merge)

    def _balance(self) -> None:
        """Fix each worker's share of the chunks (:attr:`_plan`, about the same number of slabs
        each) and move the blocks there once: a step then takes as long as one share."""
        workers = sorted(self.client.scheduler_info()["workers"])
        holders = self.client.who_has(self._blocks)
        if not workers:
            self._plan = [None] * len(self._blocks)
            return
        self._plan = balanced_placement(
            [holders.get(b.key, []) for b in self._blocks], self._costs, workers
        )
        moves = {
            i: self.client.submit(
                _same, self._blocks[i], workers=[w], allow_other_workers=True, pure=False
            )
            for i, w in enumerate(self._plan)
            if w not in holders.get(self._blocks[i].key, [])
        }
        distributed.wait(list(moves.values()))
        for i, future in moves.items():
            self._blocks[i] = future

    def _compile_first(self, kind: Kind, hardness: float) -> bool:
        """Whether this pass runs one chunk alone first: the first pass of a kernel kind while JAX
        keeps compiled programs on disk (``jax_compilation_cache_dir``, which the workers inherit).

        That chunk's kernels (one per block layout; a chunk of a nominal sample has them all) then
        compile on one worker and the others read them from the cache, instead of every worker
        compiling the same programs at the same time: on the 2-core machine two workers compiling
        at once took 77 s where one took 45 s.
        """
        key = (kind, math.isinf(hardness))
        if key in self._compiled:
            return False
        self._compiled.add(key)
        return len(self._blocks) > 1 and jax.config.jax_compilation_cache_dir is not None

    def evaluate(
        self, params: Mapping[str, float] | None = None, *, hardness: float = 1.0
    ) -> dict[str, SoftHistogram]:
        """Histograms summed over every block, by output name (``hardness=math.inf``: hard pass)."""
        return {
            name: part.to_soft()
            for name, part in self._run("value", params, hardness).hists.items()
        }

    def hard_histograms(self, params: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The hard pass as ``hist.Hist`` objects, by output name."""
        return {name: h.to_hist() for name, h in self.evaluate(params, hardness=math.inf).items()}

    def jacobian(
        self, params: Mapping[str, float] | None = None, *, hardness: float = 1.0
    ) -> tuple[dict[str, SoftHistogram], dict[str, Jacobian]]:
        """Histograms and their forward Jacobians in the parameters (one pass)."""
        total = self._run("jvp", params, hardness)
        hists = {name: part.to_soft() for name, part in total.hists.items()}
        return hists, {
            name: Jacobian(part.jac_sumw, part.jac_sumw2) for name, part in total.hists.items()
        }

    def vjp(
        self,
        params: Mapping[str, float] | None,
        cotangent: Mapping[str, tuple[Any, Any]],
        *,
        hardness: float = 1.0,
    ) -> tuple[dict[str, SoftHistogram], dict[str, float]]:
        """Histograms and ``sum over names, bins of cotangent * d(sumw, sumw2)/d params`` (one pass)."""
        ct = {
            name: (np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
            for name, (a, b) in cotangent.items()
        }
        total = self._run("vjp", params, hardness, ct)
        hists = {name: part.to_soft() for name, part in total.hists.items()}
        return hists, dict(zip(self.parameter_names, map(float, total.grad), strict=True))

    def gradient_mode(self, num_bins: int | None = None) -> Literal["forward", "reverse"]:
        """Forward when there are few parameters (at most ``forward_max_params`` and no more than
        the histogram bins, so the Jacobian is no bigger than the histograms), else reverse."""
        if self.mode != "auto":
            return self.mode
        n = len(self.parameter_names)
        return (
            "forward"
            if n <= self.forward_max_params and (num_bins is None or n <= num_bins)
            else "reverse"
        )

    def value_and_grad(
        self,
        objective: Callable[[dict[str, SoftHistogram]], Any],
        *,
        hardness: float = 1.0,
    ) -> Callable[[Mapping[str, float] | None], tuple[float, dict[str, float]]]:
        """``params -> (objective(histograms), d objective / d params)`` as floats by parameter name.

        ``objective`` is a JAX function of the summed histograms (``sumw``, ``sumw2`` are JAX
        arrays). Forward mode evaluates the Jacobian in one pass and applies the chain rule on the
        driver; reverse mode evaluates the histograms, takes the objective's gradient as cotangent
        and sums the blocks' VJPs in a second pass.
        """
        value_and_grad_hists = jax.value_and_grad(objective)

        def step(params: Mapping[str, float] | None = None) -> tuple[float, dict[str, float]]:
            if self.gradient_mode() == "forward":
                hists, jac = self.jacobian(params, hardness=hardness)
                value, ct = value_and_grad_hists(hists)
                grad = np.zeros(len(self.parameter_names))
                for name, g in ct.items():
                    for c, j in ((g.sumw, jac[name].sumw), (g.sumw2, jac[name].sumw2)):
                        c = np.asarray(c, dtype=np.float64)
                        grad += np.tensordot(c, j, axes=c.ndim)
                return float(value), dict(zip(self.parameter_names, map(float, grad), strict=True))
            hists = self.evaluate(params, hardness=hardness)
            value, ct = value_and_grad_hists(hists)
            _, grad = self.vjp(
                params, {n: (g.sumw, g.sumw2) for n, g in ct.items()}, hardness=hardness
            )
            return float(value), grad

        return step

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Release the blocks and close whatever cluster the engine started."""
        self.release()
        self._connection.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
