"""Filesets in coffea's format: reading, validation with clear errors, writing."""

from __future__ import annotations

import json

import pytest

from diffana.datasets import event_weight, load_fileset, validate_fileset, write_fileset
from diffana.errors import DatasetError, InputFileError


def _fileset(path="a.root", **meta):
    metadata = {"process": "ttbar", "variation": "nominal", "xsec": 729.84, "nevts": 1000, **meta}
    return {"ttbar__nominal": {"files": {path: "Events"}, "metadata": metadata}}


def test_relative_paths_resolve_against_the_fileset_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.root").write_bytes(b"")
    write_fileset(tmp_path / "fileset.json", _fileset("sub/a.root"))
    for source in (tmp_path, tmp_path / "fileset.json"):
        loaded = load_fileset(source)
        assert list(loaded["ttbar__nominal"]["files"]) == [str(tmp_path / "sub" / "a.root")]
        assert loaded["ttbar__nominal"]["metadata"]["nevts"] == 1000


def test_urls_and_coffea_object_path_entries_are_kept(tmp_path):
    fileset = _fileset("root://host//store/a.root")
    fileset["ttbar__nominal"]["files"]["root://host//store/a.root"] = {"object_path": "Events"}
    (tmp_path / "f.json").write_text(json.dumps(fileset))
    loaded = load_fileset(tmp_path / "f.json")
    assert loaded["ttbar__nominal"]["files"] == {
        "root://host//store/a.root": {"object_path": "Events"}
    }


def test_a_missing_file_names_the_dataset_and_the_path(tmp_path):
    write_fileset(tmp_path / "fileset.json", _fileset("gone.root"))
    with pytest.raises(InputFileError, match=r"dataset 'ttbar__nominal' lists 'gone\.root'"):
        load_fileset(tmp_path)
    assert load_fileset(tmp_path, check_files=False)


def test_an_unreadable_or_invalid_json_file_is_reported(tmp_path):
    with pytest.raises(InputFileError, match="cannot read the fileset"):
        load_fileset(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_fileset(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("fileset", "message"),
    [
        ([], "the top level is list"),
        ({"ttbar": {}}, "dataset 'ttbar' is not named PROCESS__VARIATION"),
        ({"ttbar__nominal": {"files": {}}}, "needs 'files' and 'metadata'"),
        (
            {"ttbar__nominal": {"files": {}, "metadata": {}}},
            r"ttbar__nominal.files is \{\}; give a non-empty object",
        ),
        ({"ttbar__nominal": {"files": {"a.root": 3}, "metadata": {}}}, r"files\['a.root'\] is 3"),
        (
            {"ttbar__nominal": {"files": {"a.root": "Events"}, "metadata": {"process": "ttbar"}}},
            r"metadata lacks \['variation', 'xsec', 'nevts'\]",
        ),
        (_fileset(process="wjets"), "says process 'wjets'"),
        (_fileset(xsec=-1.0), "xsec is -1.0; give the cross-section in pb, a positive number"),
        (_fileset(xsec="729"), "xsec is '729'"),
        (_fileset(nevts=0), "nevts is 0; give the number of generated events"),
        (_fileset(nevts=True), "nevts is True"),
        (_fileset(nevts=10.5), "nevts is 10.5"),
    ],
)
def test_malformed_filesets_are_refused_with_the_key_and_the_fix(fileset, message):
    with pytest.raises(DatasetError, match=message):
        validate_fileset(fileset, "f.json")


def test_event_weight_is_xsec_times_lumi_over_generated_events():
    meta = _fileset()["ttbar__nominal"]["metadata"]
    assert event_weight(meta, 3378.0) == pytest.approx(729.84 * 3378.0 / 1000)
