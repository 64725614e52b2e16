"""Phase 1: dask-awkward's column optimisation decides what is read; skim output becomes dense,
padded blocks; the real CMS NanoAOD file goes through the engine like the synthetic ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import dask_awkward as dak
import jax.numpy as jnp
import numpy as np
import pytest
import uproot

from diffana.errors import ConfigError
from diffana.pipeline.blocks import bucket_size, pack_skim, unpack_skim
from diffana.pipeline.chunking import chunk_fileset
from diffana.pipeline.engine import Engine
from diffana.pipeline.readstats import read_totals, reset_read_totals
from diffana.pipeline.skim import necessary_columns, skim_collections
from diffana.processors.base import Chunk, ColumnBlock

REAL = "data/nanoAOD_2015_CMS_Open_Data_ttbar.root"


@pytest.fixture(scope="module")
def real_fileset(shared):
    meta = {"process": "ttbar", "variation": "nominal", "xsec": 729.84, "nevts": 200}
    return {"ttbar__nominal": {"files": {str(shared / REAL): "Events"}, "metadata": meta}}


def test_column_optimisation_reads_only_touched_branches(toy, real_fileset):
    chunks, _, _, _ = chunk_fileset(real_fileset, 100)
    collections = skim_collections(toy.Processor(), chunks)
    ((_, packed),) = collections
    assert packed.npartitions == 2
    report = dak.report_necessary_columns(packed)
    (columns,) = report.values()
    expected = {"Jet_pt", "Jet_btagCSVV2", "genWeight", "nJet"}
    assert set(columns) == expected
    assert necessary_columns(collections) == expected
    file_branches = uproot.open(chunks[0].file)["Events"].keys()
    assert len(file_branches) == 947  # the other 943 branches are never read


@pytest.mark.filterwarnings("ignore:Running on a single-machine scheduler:UserWarning")
def test_collections_from_known_forms_open_no_file_and_skim_the_same(toy, real_fileset):
    chunks, _, _, forms = chunk_fileset(real_fileset, 100)
    (file,) = real_fileset["ttbar__nominal"]["files"]
    assert set(forms) == {file}
    reset_read_totals()
    known = skim_collections(toy.Processor(), chunks, forms=forms)
    assert read_totals().bytes == 0
    opened = skim_collections(toy.Processor(), chunks)
    assert read_totals().bytes > 0
    ((_, a),), ((_, b),) = known, opened
    assert (
        dak.report_necessary_columns(a).popitem()[1] == dak.report_necessary_columns(b).popitem()[1]
    )
    assert ak.array_equal(a.compute(scheduler="sync"), b.compute(scheduler="sync"))


@pytest.mark.filterwarnings("ignore:Running on a single-machine scheduler:UserWarning")
def test_a_datasets_files_are_one_collection_with_a_partition_per_chunk(
    toy, real_fileset, tmp_path
):
    (original,) = real_fileset["ttbar__nominal"]["files"]
    copies = [tmp_path / "a.root", tmp_path / "b.root"]
    for copy in copies:
        shutil.copyfile(original, copy)
    entry = real_fileset["ttbar__nominal"]
    fileset = {"ttbar__nominal": {**entry, "files": {str(c): "Events" for c in copies}}}
    chunks, _, _, forms = chunk_fileset(fileset, 100)
    assert [(Path(c.file).name, c.entry_start) for c in chunks] == [
        ("a.root", 0), ("a.root", 100), ("b.root", 0), ("b.root", 100)
    ]  # fmt: skip
    ((group, packed),) = skim_collections(toy.Processor(), chunks, forms=forms)
    assert group == chunks
    assert packed.npartitions == 4
    ((_, single),) = skim_collections(toy.Processor(), chunks[:2], forms=forms)
    whole, first = packed.compute(scheduler="sync"), single.compute(scheduler="sync")
    assert ak.array_equal(whole[:2], first)
    assert ak.array_equal(whole[2:], first)  # the second file holds the same events


def test_real_nanoaod_through_the_engine(toy, real_fileset, tmp_path):
    # a copy at a new path: nothing of it is kept in this process from earlier tests
    (original,) = real_fileset["ttbar__nominal"]["files"]
    copy = tmp_path / "nanoaod.root"
    shutil.copyfile(original, copy)
    fileset = {"ttbar__nominal": {**real_fileset["ttbar__nominal"], "files": {str(copy): "Events"}}}
    with Engine(toy.Processor(), fileset, chunk_size=64) as engine:
        report = engine.skim()
        assert (report.chunks, report.events_read) == (4, 200)
        assert report.branches == ("Jet_btagCSVV2", "Jet_pt", "genWeight", "nJet")
        # the 947-branch tree's metadata, most of this small file's bytes, is read once for the
        # entry count, the form and the four chunks, not once each
        with uproot.open(copy) as f:
            metadata = f.key("Events").fNbytes
            baskets = sum(f["Events"][b].compressed_bytes for b in report.branches)
        assert metadata + baskets < report.bytes_read < 1.5 * metadata
        assert report.read_requests >= 4
        for params in (None, {"jet_pt": 45.0, "btag": 0.8}):
            got = engine.hard_histograms(params)
            ref = toy.reference_hard(fileset, params or toy.Processor().default_params())
            toy.assert_same_hists(got, ref)
            assert (
                sum(h.variances(flow=True).sum() for h in got.values()) > 0
            )  # events were selected


CHUNK = Chunk("tt", "a.root", "Events", 0, 3)


def test_pack_unpack_pads_to_whole_slabs_with_zero_weight():
    skimmed = {
        "nominal": {
            "x": ak.Array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
            "weight": np.array([1.0, 2.0, 3.0]),
        },
        "up": {"x": ak.Array([[1.5, 2.5]]), "weight": np.array([4.0])},
    }
    blocks = unpack_skim(pack_skim(skimmed), CHUNK, slab=64)
    assert blocks.slab == 64
    assert list(blocks.blocks) == ["nominal", "up"]
    assert blocks.kept == {"nominal": 3, "up": 1}
    nominal = blocks.blocks["nominal"]
    assert nominal.num_events == 64
    np.testing.assert_array_equal(nominal["x"][:3], [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(nominal["x"][3:], np.tile([5.0, 6.0], (61, 1)))
    np.testing.assert_array_equal(nominal.weight, [1, 2, 3] + [0] * 61)
    assert blocks.nbytes == 2 * 64 * (2 * 8 + 8)


def test_prepare_adds_columns_before_padding():
    def prepare(block, systematic):
        return ColumnBlock({**block.columns, "sum": jnp.sum(jnp.asarray(block["x"]), axis=1)})

    skimmed = {"nominal": {"x": ak.Array([[1.0, 2.0], [3.0, 4.0]]), "weight": np.ones(2)}}
    calls = []
    block = unpack_skim(
        pack_skim(skimmed),
        CHUNK,
        prepare=lambda b, s: calls.append(b.num_events) or prepare(b, s),
        slab=1,
    ).blocks["nominal"]
    assert calls == [1, 1]  # slab by slab
    assert isinstance(block["sum"], np.ndarray)
    np.testing.assert_array_equal(block["sum"], [3.0, 7.0])
    block = unpack_skim(pack_skim(skimmed), CHUNK, prepare=prepare, slab=4).blocks["nominal"]
    np.testing.assert_array_equal(block["sum"], [3.0, 7.0, 7.0, 7.0])
    with pytest.raises(ConfigError, match="prepare changed the number of events from 4 to 2"):
        unpack_skim(
            pack_skim(skimmed),
            CHUNK,
            prepare=lambda b, s: ColumnBlock({k: v[:2] for k, v in b.columns.items()}),
            slab=4,
        )
    with pytest.raises(ConfigError, match="after prepare: columns must share their first"):
        unpack_skim(
            pack_skim(skimmed),
            CHUNK,
            prepare=lambda b, s: ColumnBlock({**b.columns, "y": np.ones(3)}),
        )


def test_bucket_sizes_bound_padding_and_shapes():
    sizes = [bucket_size(n) for n in range(1, 300_000, 37)]
    assert all(s >= n for s, n in zip(sizes, range(1, 300_000, 37), strict=True))
    assert all(
        s <= max(64, 1.125 * n + 1) for s, n in zip(sizes, range(1, 300_000, 37), strict=True)
    )
    assert len({bucket_size(n) for n in range(50_000, 100_001)}) <= 9


@pytest.mark.parametrize(
    ("skimmed", "match"),
    [
        ({"up": {"weight": np.ones(2)}}, "without 'nominal'"),
        ({"nominal": {"x": np.ones(2)}}, "no 'weight' column"),
        (
            {"nominal": {"x": ak.Array([[1.0], [1.0, 2.0]]), "weight": np.ones(2)}},
            "column 'x' is not dense.*ak.pad_none",
        ),
        ({"nominal": {"x": ak.Array([["a"], ["b"]]), "weight": np.ones(2)}}, "column 'x'"),
    ],
)
def test_bad_skim_output_is_named(skimmed, match):
    with pytest.raises(ConfigError, match=match):
        unpack_skim(pack_skim(skimmed), CHUNK)
