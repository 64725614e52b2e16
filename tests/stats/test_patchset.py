"""JSON patches and PatchSets against pyhf, on the published sbottom likelihood."""

from __future__ import annotations

import copy

import jsonpatch
import pyhf
import pyhf.exceptions
import pytest

from diffana.errors import WorkspaceError
from diffana.stats import Patch, PatchSet, Workspace
from diffana.stats.patchset import apply_patches, digest

POINTS = ["sbottom_1300_205_60", "sbottom_1400_950_60", "sbottom_1500_850_60"]


@pytest.fixture(scope="module")
def bkg(sbottom) -> dict:
    return sbottom["RegionA/BkgOnly.json"]


@pytest.fixture(scope="module")
def patchset_spec(sbottom, bkg) -> dict:
    """A pyhf PatchSet of three published RegionA signal points (as pyhf's ``patchset`` docs)."""
    patches = []
    for point in POINTS:
        _, msb, mn2, mn1 = point.split("_")
        patches.append(
            {
                "metadata": {"name": point, "values": [int(msb), int(mn2), int(mn1)]},
                "patch": sbottom[f"RegionA/patch.{point}.json"],
            }
        )
    return {
        "metadata": {
            "references": {"hepdata": "ins1748602"},
            "description": "sbottom multi-b, RegionA",
            "digests": {"sha256": pyhf.utils.digest(bkg, "sha256")},
            "labels": ["m_sbottom", "m_neutralino2", "m_neutralino1"],
        },
        "patches": patches,
        "version": "1.0.0",
    }


def test_digest_as_pyhf(bkg):
    for algorithm in ("sha256", "md5", "sha1"):
        assert digest(bkg, algorithm) == pyhf.utils.digest(bkg, algorithm)
    with pytest.raises(WorkspaceError, match="unknown digest"):
        digest(bkg, "nope")
    with pytest.raises(WorkspaceError, match="JSON-serialisable"):
        digest({"a": object()})


def test_patchset_as_pyhf(patchset_spec, bkg):
    ours, theirs = PatchSet(patchset_spec), pyhf.PatchSet(patchset_spec)
    for attr in ("version", "metadata", "references", "description", "digests", "labels"):
        assert getattr(ours, attr) == getattr(theirs, attr)
    assert len(ours) == len(theirs) == 3
    assert [p.name for p in ours] == [p.name for p in theirs] == POINTS
    assert [p.values for p in ours] == [p.values for p in theirs]
    assert ours["sbottom_1400_950_60"] == ours[1400, 950, 60] == ours[[1400, 950, 60]]
    assert isinstance(ours[1400, 950, 60], Patch)
    assert ours[1400, 950, 60].patch == theirs[1400, 950, 60].patch
    assert ours[1400, 950, 60] != ours[1300, 205, 60]
    assert "sbottom_1400_950_60" in repr(ours[1400, 950, 60])
    assert "3 patches" in repr(ours)
    for point in POINTS:
        ws = ours.apply(bkg, point)
        assert isinstance(ws, Workspace)
        assert dict(ws) == dict(theirs.apply(bkg, point))


def test_apply_patches_matches_jsonpatch(sbottom, bkg):
    patch = sbottom["RegionA/patch.sbottom_1300_205_60.json"]
    before = copy.deepcopy(bkg)
    assert apply_patches(bkg, [patch]) == jsonpatch.apply_patch(bkg, patch)
    assert bkg == before  # the input is never modified
    patched = apply_patches(bkg, [jsonpatch.JsonPatch(patch)])
    assert [c["name"] for c in patched["channels"]] == ["SR_meff", "CRtt_meff"]
    assert patched["channels"][0]["samples"][0]["name"] == "sbottom_1300_205_60"


def test_unknown_patch(patchset_spec):
    ps = PatchSet(patchset_spec)
    with pytest.raises(pyhf.exceptions.InvalidPatchLookup):
        pyhf.PatchSet(patchset_spec)["sbottom_1_2_3"]
    with pytest.raises(WorkspaceError, match=r"no patch 'sbottom_1_2_3'.*sbottom_1300_205_60"):
        ps["sbottom_1_2_3"]
    with pytest.raises(WorkspaceError, match=r"m_sbottom"):
        ps[1, 2, 3]
    with pytest.raises(WorkspaceError, match="no patch"):
        ps[{"not": "hashable"}]


def test_digest_mismatch(patchset_spec, bkg, sbottom):
    other = sbottom["RegionB/BkgOnly.json"]
    with pytest.raises(pyhf.exceptions.PatchSetVerificationError):
        pyhf.PatchSet(patchset_spec).verify(other)
    with pytest.raises(WorkspaceError, match="sha256 digest"):
        PatchSet(patchset_spec).apply(other, POINTS[0])
    PatchSet(patchset_spec).verify(bkg)


def _mutated(spec: dict, mutate) -> dict:
    spec = copy.deepcopy(spec)
    mutate(spec)
    return spec


BAD_PATCHSETS = {
    "version": (lambda s: s.update(version="2.0.0"), r"unsupported PatchSet version"),
    "no metadata": (lambda s: s.pop("metadata"), r"'metadata' is a required property"),
    "bad name": (
        lambda s: s["patches"][0]["metadata"].update(name="a b"),
        r"patches\[0\]\.metadata\.name",
    ),
    "duplicate name": (
        lambda s: s["patches"][1]["metadata"].update(name=POINTS[0]),
        r"patches\[1\].*used twice",
    ),
    "duplicate values": (
        lambda s: s["patches"][2]["metadata"].update(values=[1300, 205, 60]),
        r"values \[1300, 205, 60\] are used twice",
    ),
    "values vs labels": (
        lambda s: s["patches"][0]["metadata"].update(values=[1300, 205]),
        r"2 values .* for 3 labels",
    ),
    "bad op": (
        lambda s: s["patches"][0]["patch"].append({"op": "frobnicate", "path": "/x"}),
        r"patches\[0\]\.patch\[3\]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PATCHSETS))
def test_bad_patchsets(patchset_spec, case):
    mutate, pattern = BAD_PATCHSETS[case]
    spec = _mutated(patchset_spec, mutate)
    pyhf_errors = (
        pyhf.exceptions.InvalidSpecification,
        pyhf.exceptions.InvalidPatchSet,
        pyhf.exceptions.SchemaNotFound,
    )
    with pytest.raises(pyhf_errors):
        pyhf.PatchSet(spec)
    with pytest.raises(WorkspaceError, match=pattern):
        PatchSet(spec)


def test_patchset_input_errors(patchset_spec):
    with pytest.raises(WorkspaceError, match="JSON object"):
        PatchSet([])
    with pytest.raises(WorkspaceError, match="unsupported PatchSet options"):
        PatchSet(patchset_spec, schema="x.json")


@pytest.mark.parametrize(
    ("ops", "pattern"),
    [
        ([{"op": "remove", "path": "/channels/7"}], r"patch 0, operation 0 .* does not apply"),
        ([{"op": "add", "path": "/nope/0", "value": 1}], r"does not apply"),
        ([{"op": "test", "path": "/version", "value": "0.1"}], r"does not apply"),
        ([{"op": "replace", "path": "/version"}], r"JSON patch 0 violates the pyhf schema"),
        ({"op": "add"}, r"JSON patch 0 violates the pyhf schema"),
    ],
)
def test_patch_errors(bkg, ops, pattern):
    with pytest.raises(WorkspaceError, match=pattern):
        apply_patches(bkg, [ops], what="workspace")
