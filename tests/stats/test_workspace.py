"""diffana.stats.Workspace against pyhf.Workspace: summaries, measurements and operations."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pyhf
import pytest
from pyhf.exceptions import InvalidMeasurement, InvalidWorkspaceOperation

from diffana.errors import WorkspaceError
from diffana.stats import Workspace


@pytest.fixture(scope="module")
def specs(reference_cases, sbottom, shared: Path) -> dict[str, dict]:
    """Every workspace at hand: validation cases, README/ROOT references, sbottom, AGC."""
    out = {c["name"]: c["workspace"] for c in reference_cases["validation_cases"]}
    for case in reference_cases["additional_references"]:
        if "workspace" in case:
            out[case["name"]] = case["workspace"]
    docs = shared / "oracles" / "pyhf-validation" / "docs" / "examples" / "json"
    out["docs_2bin"] = json.loads((docs / "2-bin_1-channel.json").read_text())
    for region in "ABC":
        out[f"sbottom_{region}"] = sbottom[f"Region{region}/BkgOnly.json"]
    agc = shared / "oracles" / "agc-reference" / "workspace_5_files_per_process.json"
    out["agc_5"] = json.loads(agc.read_text())
    return out


SUMMARY = ("channels", "samples", "modifiers", "channel_nbins", "channel_slices")


def test_summary_matches_pyhf(specs):
    for name, spec in specs.items():
        ours, theirs = Workspace(spec), pyhf.Workspace(spec)
        for attr in (*SUMMARY, "measurement_names", "observations", "version"):
            assert getattr(ours, attr) == getattr(theirs, attr), (name, attr)
        assert dict(ours) == dict(theirs), name
        assert ours.parameters == sorted({m for m, _ in theirs.modifiers})


def test_spec_is_copied(specs):
    spec = copy.deepcopy(specs["docs_2bin"])
    ws = Workspace(spec)
    spec["channels"][0]["samples"][0]["data"][0] = -1.0
    assert ws["channels"][0]["samples"][0]["data"][0] == 5.0


def test_equality_as_pyhf(specs):
    a, b = Workspace(specs["agc_5"]), Workspace(specs["agc_5"])
    assert a == b
    assert (a != b) is False
    assert a != dict(a)  # a plain dict is never equal, as in pyhf
    assert a != Workspace(specs["docs_2bin"])
    with pytest.raises(TypeError):
        hash(a)


def _three_measurements(spec: dict) -> dict:
    spec = copy.deepcopy(spec)
    base = spec["measurements"][0]
    spec["measurements"] = [
        base,
        {"name": "second", "config": {"poi": base["config"]["poi"], "parameters": []}},
        {"name": "third", "config": {"poi": base["config"]["poi"], "parameters": []}},
    ]
    return spec


def test_get_measurement_as_pyhf(specs):
    spec = _three_measurements(specs["docs_2bin"])
    ours, theirs = Workspace(spec), pyhf.Workspace(spec)
    for kwargs in ({}, {"measurement_name": "third"}, {"measurement_index": 1}):
        assert ours.get_measurement(**kwargs) == theirs.get_measurement(**kwargs)
    for kwargs in ({"measurement_name": "nope"}, {"measurement_index": 7}):
        with pytest.raises(InvalidMeasurement):
            theirs.get_measurement(**kwargs)
        with pytest.raises(WorkspaceError, match=r"nope|out of range"):
            ours.get_measurement(**kwargs)


def test_no_measurement_is_an_error(specs):
    ws = Workspace(specs["docs_2bin"], validate=True)
    object.__setattr__(ws, "measurement_names", [])  # as a validate=False spec without any
    with pytest.raises(WorkspaceError, match="no measurements"):
        ws.get_measurement()


PRUNES = [
    ("sbottom_A", {"channels": ["VRtt_meff"]}),
    ("sbottom_A", {"modifier_types": ["histosys"]}),
    ("sbottom_A", {"modifier_types": ["lumi", "staterror"]}),
    ("sbottom_B", {"samples": ["ttbar"]}),
    ("agc_5", {"modifiers": ["ttbar_norm"], "samples": ["W+jets"]}),
    ("agc_5", {"measurements": []}),
    ("2bin_2channel_coupledhistosys_mu1", {"modifiers": ["coupled_histosys"]}),
]


@pytest.mark.parametrize(("name", "kwargs"), PRUNES)
def test_prune_as_pyhf(specs, name, kwargs):
    ours = Workspace(specs[name]).prune(**kwargs)
    theirs = pyhf.Workspace(specs[name]).prune(**kwargs)
    assert isinstance(ours, Workspace)
    assert dict(ours) == dict(theirs)


def test_rename_as_pyhf(specs):
    spec = specs["agc_5"]
    ws = Workspace(spec)
    kwargs = {
        "modifiers": {"ttbar_norm": "mu_ttbar", ws.modifiers[3][0]: "renamed_modifier"},
        "samples": {ws.samples[0]: "renamed_sample"},
        "channels": {ws.channels[1]: "renamed_channel"},
        "measurements": {"CMS_ttbar": "meas"},
    }
    ours, theirs = ws.rename(**kwargs), pyhf.Workspace(spec).rename(**kwargs)
    assert dict(ours) == dict(theirs)
    assert "renamed_channel" in ours.channels
    assert "renamed_channel" in ours.observations
    assert ours.get_measurement()["config"]["poi"] == "mu_ttbar"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channels": ["nope"]},
        {"samples": ["nope"]},
        {"modifiers": ["nope"]},
        {"modifier_types": ["shapefactor"]},
        {"measurements": ["nope"]},
    ],
)
def test_prune_unknown_names(specs, kwargs):
    with pytest.raises(InvalidWorkspaceOperation):
        pyhf.Workspace(specs["agc_5"]).prune(**kwargs)
    with pytest.raises(WorkspaceError, match="is not one of the"):
        Workspace(specs["agc_5"]).prune(**kwargs)


def test_sorted_as_pyhf(specs):
    spec = copy.deepcopy(specs["agc_5"])
    for key in ("channels", "observations"):
        spec[key].reverse()
    for channel in spec["channels"]:
        channel["samples"].reverse()
        for sample in channel["samples"]:
            sample["modifiers"].reverse()
    ours, theirs = Workspace.sorted(Workspace(spec)), pyhf.Workspace.sorted(pyhf.Workspace(spec))
    assert dict(ours) == dict(theirs)
    assert ours == Workspace.sorted(Workspace(specs["agc_5"]))
    assert ours != Workspace(spec)


def _split(spec: dict, keep: list[str], measurement: str | None = None) -> dict:
    """A sub-workspace with the channels ``keep`` (via pyhf, an independent implementation)."""
    drop = [c["name"] for c in spec["channels"] if c["name"] not in keep]
    out = dict(pyhf.Workspace(spec).prune(channels=drop))
    if measurement is not None:
        out = dict(pyhf.Workspace(out).rename(measurements={"CMS_ttbar": measurement}))
    return out


def _combine_both(left: dict, right: dict, **kwargs):
    """pyhf's and our combination, or the two exception types."""
    try:
        theirs = dict(pyhf.Workspace.combine(pyhf.Workspace(left), pyhf.Workspace(right), **kwargs))
    except (InvalidWorkspaceOperation, ValueError) as exc:
        theirs = exc
    try:
        ours = dict(Workspace.combine(Workspace(left), Workspace(right), **kwargs))
    except WorkspaceError as exc:
        ours = exc
    return ours, theirs


CR, SR = "4j1b CR", "4j2b SR"
COMBINES = [
    # disjoint channels, same measurement: merges the parameter configurations
    ({"keep_l": [CR], "keep_r": [SR]}, {}),
    ({"keep_l": [CR], "keep_r": [SR]}, {"join": "outer"}),
    # overlapping channels
    ({"keep_l": [CR, SR], "keep_r": [SR]}, {}),
    ({"keep_l": [CR, SR], "keep_r": [SR]}, {"join": "outer"}),
    ({"keep_l": [CR, SR], "keep_r": [SR]}, {"join": "left outer"}),
    ({"keep_l": [CR], "keep_r": [CR, SR]}, {"join": "right outer"}),
    ({"keep_l": [CR, SR], "keep_r": [SR]}, {"join": "outer", "merge_channels": True}),
    # a second measurement name
    ({"keep_l": [CR], "keep_r": [SR], "meas_r": "other"}, {"join": "none"}),
    # invalid options
    ({"keep_l": [CR], "keep_r": [SR]}, {"join": "inner"}),
    ({"keep_l": [CR], "keep_r": [SR]}, {"join": "none", "merge_channels": True}),
]


@pytest.mark.parametrize(("split", "kwargs"), COMBINES)
def test_combine_as_pyhf(specs, split, kwargs, caplog):
    spec = specs["agc_5"]
    left = _split(spec, split["keep_l"])
    right = _split(spec, split["keep_r"], split.get("meas_r"))
    with caplog.at_level(logging.ERROR):
        ours, theirs = _combine_both(left, right, **kwargs)
    if isinstance(theirs, Exception):
        assert isinstance(ours, WorkspaceError), (ours, theirs)
    else:
        assert ours == theirs


def test_combine_measurement_conflicts(specs):
    spec = specs["agc_5"]
    left, right = _split(spec, [CR]), _split(spec, [SR])
    other_poi = copy.deepcopy(right)
    other_poi["measurements"][0]["config"]["poi"] = "Luminosity"
    ours, theirs = _combine_both(left, other_poi, join="outer")
    assert isinstance(theirs, InvalidWorkspaceOperation)
    assert isinstance(ours, WorkspaceError)
    assert "POIs" in str(ours)
    other_bounds = copy.deepcopy(right)
    other_bounds["measurements"][0]["config"]["parameters"][0]["bounds"] = [[0, 5]]
    ours, theirs = _combine_both(left, other_bounds, join="outer")
    assert isinstance(theirs, InvalidWorkspaceOperation)
    assert isinstance(ours, WorkspaceError)
    assert "'ttbar_norm'" in str(ours)
    other_version = copy.deepcopy(right)
    ws = Workspace(other_version)
    dict.__setitem__(ws, "version", "0.9.0")
    with pytest.raises(WorkspaceError, match="versions"):
        Workspace.combine(Workspace(left), ws)


def _models(specs, sbottom):
    """(name, our model, pyhf model, our workspace, pyhf workspace) for a spread of workspaces."""
    patch = sbottom["RegionA/patch.sbottom_1300_205_60.json"]
    for name, kwargs in [
        ("1bin_lumi_mu1", {"modifier_settings": {"normsys": {"interpcode": "code1"}}}),
        ("2bin_2channel_coupledshapefactor_mu1", {}),
        ("shapesys_nuisparfilter_ROOT_reference", {}),
        ("agc_5", {}),
        ("sbottom_A", {"patches": [patch]}),
        ("sbottom_A", {"patches": [patch], "poi_name": None}),
        ("sbottom_B", {"poi_name": None}),
    ]:
        ours_ws, theirs_ws = Workspace(specs[name]), pyhf.Workspace(specs[name])
        yield name, ours_ws.model(**kwargs), theirs_ws.model(**kwargs), ours_ws, theirs_ws


def test_model_and_data_as_pyhf(specs, sbottom):
    for name, ours, theirs, ours_ws, theirs_ws in _models(specs, sbottom):
        config, pconfig = ours.config, theirs.config
        assert config.par_names == pconfig.par_names, name
        assert config.poi_name == pconfig.poi_name, name
        assert config.suggested_init() == pconfig.suggested_init(), name
        assert [list(b) for b in config.suggested_bounds()] == [
            list(b) for b in pconfig.suggested_bounds()
        ], name
        assert config.suggested_fixed() == pconfig.suggested_fixed(), name
        data = ours_ws.data(ours)
        assert data == pytest.approx(theirs_ws.data(theirs), rel=1e-12), name
        assert ours_ws.data(ours, include_auxdata=False) == theirs_ws.data(
            theirs, include_auxdata=False
        )
        pars = pconfig.suggested_init()
        assert float(ours.logpdf(pars, data)[0]) == pytest.approx(
            float(theirs.logpdf(pars, data)[0]), rel=1e-10
        ), name


def test_build_as_pyhf(specs, sbottom):
    for name, ours, theirs, _, theirs_ws in _models(specs, sbottom):
        if theirs.config.poi_name is None:
            continue  # pyhf cannot build a workspace without POI either (schema: poi is a str)
        data = theirs_ws.data(theirs, include_auxdata=False)
        built = Workspace.build(ours, data)
        try:
            expected = dict(pyhf.Workspace.build(theirs, data))
        except RuntimeError:  # pyhf: a paramset with fixed and free components
            rebuilt = pyhf.Workspace(dict(built)).model()
            assert rebuilt.config.suggested_fixed() == theirs.config.suggested_fixed()
            assert [list(b) for b in rebuilt.config.suggested_bounds()] == [
                list(b) for b in theirs.config.suggested_bounds()
            ]
            continue
        for parameter in expected["measurements"][0]["config"]["parameters"]:
            parameter["bounds"] = [list(map(float, b)) for b in parameter["bounds"]]
        assert dict(built) == expected, name
        assert Workspace.build(ours, data, name="other").measurement_names == ["other"]


def test_data_needs_observations(specs):
    ws = Workspace(specs["2bin_2channel_mu1"])
    model = ws.model(modifier_settings={"normsys": {"interpcode": "code1"}})
    lonely = Workspace(dict(ws, observations=ws["observations"][:1]), validate=False)
    with pytest.raises(WorkspaceError, match=r"no observation for channel 'control'"):
        lonely.data(model)
