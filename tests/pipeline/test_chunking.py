"""Chunking a coffea-format fileset into (file, entry range) chunks."""

from __future__ import annotations

import json

import awkward as ak
import pytest
import uproot
from hypothesis import given
from hypothesis import strategies as st

from diffana.errors import DatasetError, InputFileError
from diffana.pipeline.chunking import chunk_fileset, normalize_fileset, split_entries


@given(st.integers(0, 10**6), st.integers(500, 10**6))
def test_split_entries_covers_the_range_in_near_equal_chunks(n, size):
    ranges = split_entries(n, size)
    assert [a for a, _ in ranges[1:]] == [b for _, b in ranges[:-1]]
    if n:
        assert ranges[0][0] == 0
        assert ranges[-1][1] == n
        lengths = [b - a for a, b in ranges]
        assert max(lengths) <= size
        assert max(lengths) - min(lengths) <= 1
        assert len(ranges) == -(-n // size)
    else:
        assert ranges == []


def test_fileset_forms_and_relative_json_paths(tmp_path):
    fileset = {
        "a": ["x.root", "y.root"],
        "b": {"files": {"z.root": "Tree"}, "metadata": {"xsec": 2.0}},
        "c": {"files": {"w.root": {"object_path": "Events", "num_entries": 5}}, "treename": "T"},
    }
    (tmp_path / "fileset.json").write_text(json.dumps(fileset))
    specs = normalize_fileset(tmp_path / "fileset.json")
    assert [(s.dataset, s.file, s.treename, s.metadata) for s in specs] == [
        ("a", str(tmp_path / "x.root"), "Events", {}),
        ("a", str(tmp_path / "y.root"), "Events", {}),
        ("b", str(tmp_path / "z.root"), "Tree", {"xsec": 2.0}),
        ("c", str(tmp_path / "w.root"), "Events", {}),
    ]
    with pytest.raises(DatasetError, match="dataset 'd' has no 'files'"):
        normalize_fileset({"d": {"metadata": {}}})
    with pytest.raises(DatasetError, match="cannot read the fileset"):
        normalize_fileset(tmp_path / "missing.json")


def test_chunks_match_uproot_entry_counts(toy_fileset, local_client):
    chunks, bad, sizes, _ = chunk_fileset(toy_fileset, 400)
    assert bad == []
    for dataset, entry in toy_fileset.items():
        for file in entry["files"]:
            mine = [(c.entry_start, c.entry_stop) for c in chunks if c.file == file]
            assert mine == split_entries(uproot.open(file)["Events"].num_entries, 400)
            assert all(
                c.dataset == dataset and c.metadata["xsec"] == entry["metadata"]["xsec"]
                for c in chunks
                if c.file == file
            )
            assert sizes[file] == uproot.open(file).file.fEND
    assert len({c.file_id for c in chunks}) == 3
    on_cluster, _, _, _ = chunk_fileset(toy_fileset, 400, client=local_client)
    assert on_cluster == chunks
    assert [c.file_id for c in on_cluster] == [c.file_id for c in chunks]


@pytest.mark.filterwarnings("ignore:Running on a single-machine scheduler:UserWarning")
def test_forms_are_those_coffeas_preprocess_saves(shared, toy_fileset, local_client):
    from coffea.dataset_tools import preprocess_legacy
    from coffea.util import decompress_form

    real = str(shared / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root")
    fileset = {**toy_fileset, "real": {"files": {real: "Events"}}}
    for client in (None, local_client):
        _, _, _, forms = chunk_fileset(fileset, 400, client=client)
        assert set(forms) == {f for e in fileset.values() for f in e["files"]}
        for dataset, entry in fileset.items():
            saved, _ = preprocess_legacy(
                {dataset: {"files": dict.fromkeys(entry["files"], "Events")}},
                save_form=True,
                scheduler="sync",  # in this process, beside the test's LocalCluster
            )
            theirs = ak.forms.from_json(decompress_form(saved[dataset]["form"]))
            for file in entry["files"]:
                assert ak.forms.from_json(forms[file]) == theirs


def test_bad_files_raise_or_are_set_aside(toy_fileset, tmp_path):
    fileset = {**toy_fileset, "ghost": [str(tmp_path / "ghost.root")]}
    with pytest.raises(
        InputFileError, match=r"dataset 'ghost', file .*ghost\.root: the file does not exist"
    ):
        chunk_fileset(fileset, 500)
    chunks, bad, _, _ = chunk_fileset(fileset, 500, skip_bad_files=True)
    assert len(chunks) == 9
    assert [(s.dataset, type(e)) for s, e in bad] == [("ghost", InputFileError)]
    with pytest.raises(DatasetError, match="chunk_size must be a positive"):
        chunk_fileset(toy_fileset, 0)
