"""Faults: bad input files raise errors naming dataset, file and entry range, or are skipped and
reported; a worker process killed mid-run is recomputed by Dask with identical results."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from diffana.errors import ChunkError, InputFileError
from diffana.pipeline.engine import Engine


def _with_file(fileset: dict, dataset: str, path: str, tree: str = "Events") -> dict:
    out = {k: {**v, "files": dict(v["files"])} for k, v in fileset.items()}
    out[dataset]["files"][path] = tree
    return out


@pytest.fixture(scope="module")
def truncated(tmp_path_factory, toy):
    """A 1500-entry file cut in half: entries [0, 500) readable, [500, 1500) not."""
    folder = tmp_path_factory.mktemp("faults")
    full = folder / "full.root"
    toy.write_nanoaod(full, 1500, 99)
    data = full.read_bytes()
    path = folder / "truncated.root"
    path.write_bytes(data[: len(data) // 2])
    return str(path)


def test_truncated_file_raises_chunk_error_naming_dataset_file_and_range(
    executor, toy, toy_fileset, truncated
):
    fileset = _with_file(toy_fileset, "ttbar__nominal", truncated)
    engine = Engine(toy.Processor(), fileset, cluster=executor, chunk_size=500, retries=0)
    with (
        engine,
        pytest.raises(
            ChunkError,
            match=r"ttbar__nominal: .*truncated\.root:Events entries \[(500, 1000|1000, 1500)\): OSError",
        ) as info,
    ):
        engine.skim()
    assert "skip_bad_files=True" in str(info.value)


def test_truncated_file_skipped_and_reported(executor, toy, toy_fileset, truncated):
    fileset = _with_file(toy_fileset, "ttbar__nominal", truncated)
    with Engine(
        toy.Processor(), fileset, cluster=executor, chunk_size=500, skip_bad_files=True, retries=0
    ) as engine:
        report = engine.skim()
        skipped = sorted((s.file, s.entry_start, s.entry_stop, s.events) for s in report.skipped)
        assert skipped == [(truncated, 500, 1000, 500), (truncated, 1000, 1500, 500)]
        assert report.events_lost == 1000
        assert report.chunks == 12
        assert report.chunks_done == 10
        assert all("OSError" in s.error for s in report.skipped)
        params = toy.Processor().default_params()
        toy.assert_same_hists(
            engine.hard_histograms(), toy.reference_hard(fileset, params, {truncated: 500})
        )


def test_missing_file(toy, toy_fileset, tmp_path):
    missing = str(tmp_path / "nowhere.root")
    fileset = _with_file(toy_fileset, "wjets__nominal", missing)
    with (
        Engine(toy.Processor(), fileset, chunk_size=500) as engine,
        pytest.raises(
            InputFileError,
            match=r"dataset 'wjets__nominal', file .*nowhere\.root: the file does not exist",
        ),
    ):
        engine.skim()
    with Engine(toy.Processor(), fileset, chunk_size=500, skip_bad_files=True) as engine:
        report = engine.skim()
        assert [(s.dataset, s.file, s.entry_start, s.events) for s in report.skipped] == [
            ("wjets__nominal", missing, None, None)
        ]
        assert (
            report.events_lost is None
        )  # unknown: the file could not be opened, and the report says so
        toy.assert_same_hists(
            engine.hard_histograms(),
            toy.reference_hard(toy_fileset, toy.Processor().default_params()),
        )


def test_wrong_tree_and_broken_header(toy, toy_fileset, tmp_path):
    good = next(iter(toy_fileset["ttbar__nominal"]["files"]))
    fileset = _with_file(toy_fileset, "ttbar__nominal", good, tree="Runs")
    fileset["ttbar__nominal"]["files"] = {good: "Runs"}
    with pytest.raises(
        InputFileError,
        match=r"dataset 'ttbar__nominal', file .*: no tree 'Runs' in the file \(it has \['Events'\]\)",
    ):
        Engine(toy.Processor(), fileset, chunk_size=500).skim()
    broken = tmp_path / "header.root"
    broken.write_bytes(Path(good).read_bytes()[:300])
    with pytest.raises(
        InputFileError, match=r"header\.root: cannot be read as ROOT .* truncated or corrupt"
    ):
        Engine(
            toy.Processor(), _with_file(toy_fileset, "ttbar__nominal", str(broken)), chunk_size=500
        ).skim()


class FlakyProcessor:
    """Mixin: the first real (not typetracer) skim call in this process raises an OSError."""

    failures_left = 1

    def skim(self, events):
        if ak.backend(events) != "typetracer" and type(self).failures_left > 0:
            type(self).failures_left -= 1
            msg = "transient read failure"
            raise OSError(msg)
        return super().skim(events)


def test_retries_are_configurable(toy, toy_fileset):
    flaky = type("Flaky", (FlakyProcessor, toy.Processor), {})
    flaky.failures_left = 1
    with (
        Engine(flaky(), toy_fileset, chunk_size=500, retries=0) as engine,
        pytest.raises(ChunkError, match="transient read failure"),
    ):
        engine.skim()
    flaky.failures_left = 1
    with Engine(flaky(), toy_fileset, chunk_size=500, retries=1) as engine:
        assert engine.skim().chunks_done == 9
        toy.assert_same_hists(
            engine.hard_histograms(),
            toy.reference_hard(toy_fileset, toy.Processor().default_params()),
        )


def _kill_worker(client, address):
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)


def test_worker_killed_between_phases_is_recomputed(local_client, toy, toy_fileset):
    with Engine(toy.Processor(), toy_fileset, cluster=local_client, chunk_size=500) as engine:
        engine.skim()
        before_soft, before_hard = (
            engine.evaluate({"jet_pt": 33.0, "btag": 0.5}),
            engine.hard_histograms(),
        )
        holders = local_client.who_has(engine._blocks)
        victim = next(iter(holders.values()))[0]
        _kill_worker(local_client, victim)
        local_client.wait_for_workers(2, timeout=60)
        after_soft, after_hard = (
            engine.evaluate({"jet_pt": 33.0, "btag": 0.5}),
            engine.hard_histograms(),
        )
    for name in before_soft:
        np.testing.assert_array_equal(after_soft[name].sumw, before_soft[name].sumw)
        np.testing.assert_array_equal(after_soft[name].sumw2, before_soft[name].sumw2)
    toy.assert_same_hists(after_hard, before_hard)


class SlowProcessor:
    """Mixin: every real skim call takes a while, so a worker can be killed mid-skim."""

    def skim(self, events):
        if ak.backend(events) != "typetracer":
            time.sleep(0.4)
        return super().skim(events)


def test_worker_killed_during_skim_is_recomputed(local_client, toy, toy_fileset):
    slow = type("Slow", (SlowProcessor, toy.Processor), {})
    with Engine(slow(), toy_fileset, cluster=local_client, chunk_size=500) as engine:
        result: dict = {}
        thread = threading.Thread(target=lambda: result.setdefault("report", engine.skim()))
        thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [
                w
                for w, keys in local_client.processing().items()
                if any("blocks" in str(k) or "skim" in str(k) for k in keys)
            ]
            if busy:
                break
            time.sleep(0.05)
        assert busy, "no skim task ever ran"
        _kill_worker(local_client, busy[0])
        thread.join(120)
        assert result["report"].chunks_done == 9
        hard = engine.hard_histograms()
    toy.assert_same_hists(hard, toy.reference_hard(toy_fileset, toy.Processor().default_params()))
    local_client.wait_for_workers(2, timeout=60)
