"""The on-disk block cache: reruns skip the read; a changed file or processor misses the cache."""

from __future__ import annotations

import numpy as np
import uproot

from diffana.pipeline.cache import BlockCache
from diffana.pipeline.engine import Engine


def test_rerun_reads_no_basket_and_gives_identical_histograms(executor, toy, toy_fileset, tmp_path):
    params = {"jet_pt": 32.0, "btag": 0.55}
    with Engine(
        toy.Processor(), toy_fileset, cluster=executor, chunk_size=500, cache=tmp_path
    ) as first:
        report = first.skim()
        assert report.bytes_read > 0
        assert report.chunks_from_cache == 0
        expected = first.evaluate(params)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 9
    with np.load(files[0], allow_pickle=False) as data:  # plain arrays, no pickle
        assert {n.split("/")[0] for n in data.files} == {"slab", "kept", "block"}
    with Engine(
        toy.Processor(), toy_fileset, cluster=executor, chunk_size=500, cache=tmp_path
    ) as second:
        report = second.skim()
        # no basket: only what learning the files' entries and identity takes (their headers,
        # and their tree metadata where this process has not kept it)
        metadata = 0
        for entry in toy_fileset.values():
            for file in entry["files"]:
                with uproot.open(file) as f:
                    metadata += f.key("Events").fNbytes
        assert report.bytes_read <= metadata + 3 * 1024
        assert report.chunks_from_cache == report.chunks_done == 9
        assert report.events_read == 4500
        got = second.evaluate(params)
    for name, h in expected.items():
        np.testing.assert_array_equal(got[name].sumw, h.sumw)
        np.testing.assert_array_equal(got[name].sumw2, h.sumw2)


def test_changed_processor_state_or_file_misses(toy, toy_fileset, tmp_path):
    with Engine(toy.Processor(), toy_fileset, chunk_size=500, cache=tmp_path) as engine:
        engine.skim()
    changed = toy.Processor()
    changed.option = "other"  # state is part of the fingerprint
    assert changed.fingerprint() != toy.Processor().fingerprint()
    with Engine(changed, toy_fileset, chunk_size=500, cache=tmp_path) as engine:
        assert engine.skim().chunks_from_cache == 0
    # a rewritten file has a new ROOT UUID
    data = tmp_path / "data"
    data.mkdir()
    fileset = toy.make_fileset(data)
    with Engine(toy.Processor(), fileset, chunk_size=500, cache=tmp_path) as engine:
        engine.skim()
        chunk = engine.chunks[0]
    cache = BlockCache(tmp_path)
    key = cache.key(chunk, "f")
    toy.write_nanoaod(chunk.file, 1500, 1)  # same content generator, new file
    with Engine(toy.Processor(), fileset, chunk_size=500, cache=tmp_path) as engine:
        report = engine.skim()
        assert report.chunks_from_cache == 6  # the other two files still hit
        assert cache.key(engine.chunks[0], "f") != key


def test_blocks_kept_on_disk_give_the_same_results(
    executor, toy, toy_fileset, toy_engines, tmp_path
):
    params = {"jet_pt": 36.0, "btag": 0.4}
    with Engine(
        toy.Processor(),
        toy_fileset,
        cluster=executor,
        chunk_size=500,
        cache=tmp_path,
        keep="disk",
        block_size=256,  # as the reference engine: the same slabs, the same sums
    ) as engine:
        report = engine.skim()
        assert report.blocks == 15
        assert len(list(tmp_path.glob("*.npz"))) == 9
        hists, jac = engine.jacobian(params)
    ref_hists, ref_jac = toy_engines["inprocess"].jacobian(params)
    for name, h in ref_hists.items():
        np.testing.assert_array_equal(hists[name].sumw, h.sumw)
        np.testing.assert_array_equal(jac[name].sumw, ref_jac[name].sumw)
