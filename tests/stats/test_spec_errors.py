"""Bad workspaces give typed errors that name the place, the bad value and the fix.

Where pyhf rejects the same input too, the test checks that (an independent judge that the input
is invalid); where diffana is stricter than pyhf (non-finite numbers, negative counts, channels
without observations, inits outside their bounds), the docstring of ``_spec_checks`` says why.
"""

from __future__ import annotations

import copy
import math

import pyhf
import pyhf.exceptions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffana.errors import DiffanaError, WorkspaceError
from diffana.stats import Workspace


@pytest.fixture(scope="module")
def base(reference_cases) -> dict:
    """Two channels, every shared-modifier flavour: 2bin_2channel_coupledhistosys plus extras."""
    cases = {c["name"]: c["workspace"] for c in reference_cases["validation_cases"]}
    spec = copy.deepcopy(cases["2bin_2channel_coupledhistosys_mu1"])
    sample = spec["channels"][0]["samples"][1]
    sample["modifiers"] += [
        {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
        {"name": "stat_signal", "type": "staterror", "data": [1.0, 2.0]},
        {"name": "shape", "type": "shapesys", "data": [3.0, 4.0]},
        {"name": "lumi", "type": "lumi", "data": None},
    ]
    spec["measurements"][0]["config"]["parameters"] = [
        {
            "name": "lumi",
            "auxdata": [1.0],
            "sigmas": [0.05],
            "bounds": [[0.5, 1.5]],
            "inits": [1.0],
        },
        {"name": "mu", "bounds": [[0.0, 10.0]], "inits": [1.0]},
    ]
    return spec


def _edit(spec: dict, path: list, value=None, *, delete: bool = False) -> dict:
    spec = copy.deepcopy(spec)
    target = spec
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return spec


S0 = ["channels", 0, "samples", 0]
S1 = ["channels", 0, "samples", 1]
PARS = ["measurements", 0, "config", "parameters"]
NAN, INF = math.nan, math.inf

# case -> (path, value, the path the error must name, words the message must contain, pyhf rejects?)
CASES = {
    "missing observations": (
        ["observations"],
        "DELETE",
        "<root>",
        "'observations' is a required",
        True,
    ),
    "sample data not a list": ([*S0, "data"], "12", "samples[0].data", "not of type 'array'", True),
    "unknown modifier type": (
        [*S1, "modifiers", 0, "type"],
        "normfoo",
        "modifiers[0]",
        "unknown modifier type 'normfoo'",
        True,
    ),
    "normsys without hi": (
        [*S1, "modifiers", 1, "data"],
        {"lo": 0.9},
        "modifiers[1].data",
        "'hi' is a required",
        True,
    ),
    "lumi with another name": (
        [*S1, "modifiers", 4, "name"],
        "lumi2",
        "modifiers[4].name",
        "'lumi' was expected",
        True,
    ),
    "bad version": (["version"], "1.1.0", "version", "unsupported workspace version", True),
    "sample with too many bins": (
        [*S1, "data"],
        [1.0, 2.0, 3.0],
        "samples[1].data",
        "3 entries but the channel has 2 bins",
        True,
    ),
    "histosys with too few bins": (
        [*S1, "modifiers", 0, "data", "hi_data"],
        [1.0],
        "hi_data",
        "1 entries but the channel has 2",
        True,
    ),
    "staterror with too many bins": (
        [*S1, "modifiers", 2, "data"],
        [1.0, 1.0, 1.0],
        "modifiers[2].data",
        "3 entries",
        True,
    ),
    "observation with too few bins": (
        ["observations", 0, "data"],
        [1.0],
        "observations[0].data",
        "1 entries",
        False,
    ),
    "NaN yield": ([*S1, "data", 1], NAN, "samples[1].data[1]", "must be finite", False),
    "infinite histosys": (
        [*S1, "modifiers", 0, "data", "lo_data", 0],
        INF,
        "lo_data[0]",
        "must be finite",
        False,
    ),
    "negative count": (
        ["observations", 0, "data", 0],
        -3.0,
        "observations[0].data[0]",
        "must not be negative",
        False,
    ),
    "negative total yield": (
        [*S1, "data", 0],
        -1000.0,
        "channels[0]",
        "total nominal yield of bin 0",
        False,
    ),
    "negative shapesys": (
        [*S1, "modifiers", 3, "data", 0],
        -1.0,
        "modifiers[3].data[0]",
        "must not be negative",
        False,
    ),
    "negative normsys": (
        [*S1, "modifiers", 1, "data", "lo"],
        -0.5,
        "modifiers[1].data",
        "normsys lo must not be negative",
        False,
    ),
    "duplicate channel": (
        ["channels", 1, "name"],
        "signal",
        "channels[1].name",
        "duplicate channel name 'signal'",
        False,
    ),
    "duplicate sample": ([*S1, "name"], "signal", "samples[1].name", "duplicate sample", False),
    "duplicate modifier": (
        [*S1, "modifiers", 1],
        {
            "name": "coupled_histosys",
            "type": "histosys",
            "data": {"hi_data": [1, 2], "lo_data": [1, 2]},
        },
        "modifiers[1]",
        "appears twice",
        False,
    ),
    "duplicate observation": (
        ["observations", 1, "name"],
        "signal",
        "observations[1].name",
        "duplicate observation",
        False,
    ),
    "channel without observation": (
        ["observations", 1, "name"],
        "elsewhere",
        "channels[1].name",
        "has no observation",
        False,
    ),
    "duplicate parameter config": (
        [*PARS, 1, "name"],
        "lumi",
        "parameters[1].name",
        "duplicate parameter configuration",
        True,
    ),
    "normfactor shares a normsys name": (
        [*S1, "modifiers", 1, "name"],
        "mu",
        "modifiers[1]",
        "is a normsys here but",
        True,
    ),
    "shapesys shared": (
        [*S0, "modifiers"],
        [{"name": "shape", "type": "shapesys", "data": [1.0, 1.0]}],
        "modifiers[3]",
        "cannot be shared",
        True,
    ),
    "bounds not a pair": (
        [*PARS, 1, "bounds"],
        [[0.0, 1.0, 2.0]],
        "parameters[1].bounds[0]",
        "two numbers",
        False,
    ),
    "bounds reversed": (
        [*PARS, 1, "bounds"],
        [[10.0, 0.0]],
        "parameters[1].bounds[0]",
        "low bound exceeds",
        False,
    ),
    "init outside bounds": (
        [*PARS, 1, "inits"],
        [20.0],
        "parameters[1].inits[0]",
        "outside its bounds",
        False,
    ),
    "sigmas on a normfactor": (
        [*PARS, 1, "sigmas"],
        [1.0],
        "parameters[1].sigmas",
        "does not use 'sigmas'",
        True,
    ),
    "inits of wrong length": (
        [*PARS, 1, "inits"],
        [1.0, 1.0],
        "parameters[1].inits",
        "2 entries, the parameter has 1",
        True,
    ),
    "negative sigma": (
        [*PARS, 0, "sigmas", 0],
        -0.1,
        "parameters[0].sigmas[0]",
        "must not be negative",
        False,
    ),
}


def _pyhf_rejects(spec: dict) -> bool:
    try:
        pyhf.Workspace(spec).model()
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidModel,
            pyhf.exceptions.InvalidModifier, pyhf.exceptions.InvalidNameReuse,
            pyhf.exceptions.SchemaNotFound):  # fmt: skip
        return True
    return False


def test_base_is_valid(base):
    ws = Workspace(base)
    assert ws.parameters == ["bkg_norm", "coupled_histosys", "lumi", "mu", "shape", "stat_signal"]
    pyhf.Workspace(base).model()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_workspace(base, case):
    path, value, where, words, pyhf_rejects = CASES[case]
    spec = _edit(base, path, delete=True) if value == "DELETE" else _edit(base, path, value)
    with pytest.raises(WorkspaceError) as info:
        Workspace(spec)
    message = str(info.value)
    assert where in info.value.path, message
    assert words in message
    assert message.startswith(f"at {info.value.path}: ")
    assert "; " in message  # a fix follows the problem
    if pyhf_rejects:
        assert _pyhf_rejects(spec)


def test_bad_inputs():
    with pytest.raises(WorkspaceError, match="must be a JSON object"):
        Workspace([1, 2])
    with pytest.raises(WorkspaceError, match="unsupported Workspace options"):
        Workspace({}, schema="workspace.json")
    with pytest.raises(WorkspaceError, match="malformed"):
        Workspace({"channels": [{}]}, validate=False)


def test_missing_poi(base):
    spec = _edit(base, ["measurements", 0, "config", "poi"], "mu_SIG")
    ws = Workspace(spec)  # a signal patch may add the POI: only model() must have it
    with pytest.raises(pyhf.exceptions.InvalidModel):
        pyhf.Workspace(spec).model()
    with pytest.raises(WorkspaceError, match=r"POI 'mu_SIG' of measurement 'meas'") as info:
        ws.model()
    assert "patch" in str(info.value)
    assert info.value.path == "measurements[0].config.poi"


def test_vector_poi(base):
    spec = _edit(base, ["measurements", 0, "config", "poi"], "shape")
    with pytest.raises(pyhf.exceptions.InvalidModel):
        pyhf.Workspace(spec).model()
    with pytest.raises(WorkspaceError, match="2 components"):
        Workspace(spec).model()


def test_lumi_needs_a_configuration(base):
    spec = _edit(base, [*PARS, 0], {"name": "lumi", "auxdata": [1.0]})
    with pytest.raises(
        WorkspaceError, match=r"does not configure lumi \['sigmas', 'bounds', 'inits'\]"
    ):
        Workspace(spec).model()
    with pytest.raises(TypeError):  # pyhf fails later, untyped
        pyhf.Workspace(spec).model()


def _json_values():
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.sampled_from([-1.5, 0.0, 2.5, math.nan, math.inf]),
        st.sampled_from(["", "mu", "lumi", "normsys", "histosys", "x"]),
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["name", "data", "type", "hi", "lo"]), inner, max_size=3
            )
        ),
        max_leaves=6,
    )


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


_NUMBERS = [0.0, -1.0, 1e-12, 0.5, 3.0, 1e6, math.nan, math.inf]
_MODIFIER_DATA = {
    "normfactor": lambda n: None,
    "shapefactor": lambda n: None,
    "lumi": lambda n: None,
    "normsys": lambda n: {"hi": 1.2, "lo": 0.8},
    "histosys": lambda n: {"hi_data": [5.0] * n, "lo_data": [4.0] * n},
    "shapesys": lambda n: [1.0] * n,
    "staterror": lambda n: [0.5] * n,
}


def _semantic_edit(draw, spec, paths):
    """A schema-valid but possibly inconsistent edit: reuse a name, change a number or a type."""
    kind = draw(st.sampled_from(["number", "name", "type", "grow", "shrink"]))
    if kind == "number":
        numeric = [
            p
            for p in paths
            if isinstance(_get(spec, p), float | int) and not isinstance(_get(spec, p), bool)
        ]
        if numeric:
            _set(spec, draw(st.sampled_from(numeric)), draw(st.sampled_from(_NUMBERS)))
    elif kind == "name":
        named = [p for p in paths if p[-1] in ("name", "poi") and isinstance(_get(spec, p), str)]
        names = sorted({_get(spec, p) for p in named} | {"mu", "lumi", "new"})
        if named:
            _set(spec, draw(st.sampled_from(named)), draw(st.sampled_from(names)))
    elif kind == "type":
        mods = [
            p
            for p in paths
            if len(p) >= 2 and p[-2] == "modifiers" and isinstance(_get(spec, p), dict)
        ]
        if mods:
            mod = _get(spec, draw(st.sampled_from(mods)))
            mtype = draw(st.sampled_from(sorted(_MODIFIER_DATA)))
            mod.update(type=mtype, data=_MODIFIER_DATA[mtype](draw(st.integers(1, 3))))
            if mtype == "lumi":
                mod["name"] = "lumi"
    else:
        lists = [p for p in paths if isinstance(_get(spec, p), list) and _get(spec, p)]
        if lists:
            target = _get(spec, draw(st.sampled_from(lists)))
            if kind == "grow":
                target.append(copy.deepcopy(target[-1]))
            else:
                target.pop(draw(st.integers(0, len(target) - 1)))


def _get(node, path):
    for key in path:
        node = node[key]
    return node


def _set(node, path, value):
    _get(node, path[:-1])[path[-1]] = value


@st.composite
def mutated_specs(draw, base):
    """Up to three edits of a valid spec: raw JSON damage or schema-valid inconsistencies."""
    spec = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(spec) if p]
        action = draw(st.sampled_from(["semantic"] * 4 + ["replace", "delete", "duplicate"]))
        if action == "semantic":
            _semantic_edit(draw, spec, paths)
            continue
        path = draw(st.sampled_from(paths))
        parent = _get(spec, path[:-1])
        if action == "replace":
            parent[path[-1]] = draw(_json_values())
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = [copy.deepcopy(parent[path[-1]])]
    return spec


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_malformed_specs_raise_only_typed_errors(base, data):
    spec = data.draw(mutated_specs(base))
    try:
        ws = Workspace(spec)
        model = ws.model()
        observed = ws.data(model)
    except DiffanaError as exc:
        message = str(exc)
    else:
        message = "valid"
        assert len(observed) == model.config.nmaindata + model.config.nauxdata
    assert message  # a message, not a bare class
