"""``diffana generate``: write the built-in AGC-like dataset as ROOT files and a fileset.

The dataset is written into a temporary folder beside ``outdir`` and renamed to ``outdir`` only
when every file and the fileset are complete; on any error or interruption the temporary folder is
removed, so no half-written dataset is ever left behind.

Every file has its own random stream, ``SeedSequence(seed, spawn_key=(crc32(dataset), file))``:
a dataset is identical for a seed whatever the other samples, the order or the number of jobs.
"""

from __future__ import annotations

import difflib
import multiprocessing
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from diffana.datasets.fileset import FILESET_NAME, write_fileset
from diffana.datasets.samples import LUMI, SAMPLES, Sample
from diffana.datasets.summary import agc_yields
from diffana.datasets.synthetic import simulate
from diffana.datasets.writer import COMPRESSIONS, write_events
from diffana.errors import DatasetError

__all__ = ["DEFAULT_EVENTS", "FileResult", "GeneratedDataset", "generate", "seed_sequence"]

#: default ``--events-per-sample``: generated ttbar nominal events; other samples scale with it
DEFAULT_EVENTS = 500_000
DEFAULT_FILES = 2
DEFAULT_SEED = 2015


class FileResult(NamedTuple):
    """What one generated file holds; ``yields`` are its weighted events in 4j1b and 4j2b."""

    dataset: str
    path: str
    generated: int
    written: int
    nbytes: int
    yields: dict[str, float]


class GeneratedDataset(NamedTuple):
    """The result of :func:`generate`: where it is and what it holds."""

    outdir: Path
    fileset: Path
    files: list[FileResult]
    seconds: float


def seed_sequence(seed: int, dataset: str, file_index: int) -> np.random.SeedSequence:
    """The independent random stream of one file of one dataset."""
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(dataset.encode()), file_index))


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


class _Task(NamedTuple):
    sample: str
    file_index: int
    first_event: int
    n: int
    n_total: int
    seed: int
    path: Path
    compression: str


def _run(task: _Task) -> FileResult:
    sample = SAMPLES[task.sample]
    rng = np.random.default_rng(seed_sequence(task.seed, task.sample, task.file_index))
    index, cols = simulate(sample.physics, task.n, rng)
    event = (task.first_event + index + 1).astype(np.uint64)
    cols.update(
        run=np.ones(index.size, np.uint32),
        luminosityBlock=((event - 1) // 1000 + 1).astype(np.uint32),
        event=event,
        genWeight=np.ones(index.size, np.float32),
    )
    write_events(task.path, cols, task.compression)
    weight = sample.xsec * LUMI / task.n_total
    return FileResult(
        task.sample,
        str(task.path),
        task.n,
        int(index.size),
        task.path.stat().st_size,
        agc_yields(cols, weight),
    )


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        msg = f"{name} is {value!r}; it must be a positive integer"
        raise DatasetError(msg)


def _check_samples(samples: Sequence[str] | None) -> list[Sample]:
    if samples is None:
        return list(SAMPLES.values())
    chosen = []
    for name in samples:
        if name not in SAMPLES:
            close = [s for s in SAMPLES if name.lower() in s.lower()][:3]
            close = close or difflib.get_close_matches(name, SAMPLES, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            msg = f"unknown sample {name!r}; {hint}choose from {', '.join(SAMPLES)}"
            raise DatasetError(msg)
        if SAMPLES[name] not in chosen:
            chosen.append(SAMPLES[name])
    if not chosen:
        msg = "no sample chosen; give at least one of " + ", ".join(SAMPLES)
        raise DatasetError(msg)
    return chosen


def _temporary_folder(outdir: Path) -> Path:
    if outdir.exists():
        if not outdir.is_dir():
            msg = f"OUTDIR {outdir} exists and is not a folder; choose a new folder name"
            raise DatasetError(msg)
        if any(outdir.iterdir()):
            msg = (
                f"OUTDIR {outdir} is not empty; choose a new folder or remove the old dataset first"
            )
            raise DatasetError(msg)
    parent = outdir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{outdir.name}.tmp-", dir=parent))
    except OSError as exc:
        msg = (
            f"cannot write OUTDIR {outdir}: {exc.strerror or exc} in {parent}; "
            "choose a folder you can write to"
        )
        raise DatasetError(msg) from exc


def generate(
    outdir: str | os.PathLike,
    *,
    events_per_sample: int = DEFAULT_EVENTS,
    files_per_sample: int = DEFAULT_FILES,
    seed: int = DEFAULT_SEED,
    compression: str = "lz4",
    samples: Sequence[str] | None = None,
    jobs: int = 1,
    progress: Callable[[FileResult], None] | None = None,
) -> GeneratedDataset:
    """Generate the AGC-like dataset into ``outdir`` (a new or empty folder).

    Args:
        outdir: the dataset folder; it receives ``fileset.json`` and one folder per dataset.
        events_per_sample: generated ttbar nominal events; every sample generates
            ``round(sample.size * events_per_sample)`` events (before the preselection).
        files_per_sample: files per dataset; the events are split evenly among them.
        seed: the random seed; the same seed gives the same events.
        compression: ``lz4`` (default: reads about 4x faster than ``zlib`` at 1.4x the size),
            ``zlib``, ``zstd`` or ``none``.
        samples: dataset names to generate (default: all of :data:`~diffana.datasets.SAMPLES`).
        jobs: processes that generate files in parallel.
        progress: called with each finished file.

    Raises:
        DatasetError: a bad argument or an ``outdir`` that is not empty or not writable.
    """
    start = time.perf_counter()
    _check_positive("--events-per-sample", events_per_sample)
    _check_positive("--files-per-sample", files_per_sample)
    _check_positive("--jobs", jobs)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        msg = f"--seed is {seed!r}; it must be a non-negative integer"
        raise DatasetError(msg)
    if compression not in COMPRESSIONS:
        msg = f"--compression is {compression!r}; choose one of {', '.join(COMPRESSIONS)}"
        raise DatasetError(msg)
    chosen = _check_samples(samples)
    outdir = Path(outdir).absolute()
    tmp = _temporary_folder(outdir)
    try:
        tasks = []
        for sample in chosen:
            n_total = sample.events(events_per_sample)
            (tmp / sample.name).mkdir()
            first = 0
            for k, n in enumerate(_split(n_total, min(files_per_sample, n_total))):
                path = tmp / sample.name / f"{sample.name}_{k}.root"
                tasks.append(_Task(sample.name, k, first, n, n_total, seed, path, compression))
                first += n
        results = []
        if jobs == 1:
            for task in tasks:
                results.append(_run(task))
                if progress:
                    progress(results[-1])
        else:
            # spawn, not fork: JAX (imported with diffana) runs threads that a fork would copy
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
                try:
                    for result in pool.map(_run, tasks):
                        results.append(result)
                        if progress:
                            progress(result)
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
        fileset = {}
        for sample in chosen:
            mine = [r for r in results if r.dataset == sample.name]
            files = {str(Path(r.path).relative_to(tmp)): "Events" for r in mine}
            meta = {
                "process": sample.process,
                "variation": sample.variation,
                "xsec": sample.xsec,
                "nevts": sum(r.generated for r in mine),
            }
            fileset[sample.name] = {"files": files, "metadata": meta}
        write_fileset(tmp / FILESET_NAME, fileset)
        if outdir.exists():
            outdir.rmdir()  # empty, checked above
        tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    results = [r._replace(path=str(outdir / Path(r.path).relative_to(tmp))) for r in results]
    return GeneratedDataset(outdir, outdir / FILESET_NAME, results, time.perf_counter() - start)
