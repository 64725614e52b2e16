"""``diffana cls|fit|limit|inspect`` against pyhf's own CLI and API (numpy backend)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonpatch
import numpy as np
import pyhf
import pytest
from click.testing import CliRunner
from pyhf.cli import cli as pyhf_cli

from diffana.cli import main


def _write(tmp_path: Path, name: str, doc) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def _diffana(capsys, *argv: str):
    """Run the CLI in process; (exit code, parsed JSON stdout or text, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


def _pyhf(*argv: str):
    result = CliRunner().invoke(pyhf_cli, list(argv), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def files(reference_cases, sbottom, shared, tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("cli")
    out = {
        c["name"]: _write(tmp, f"{c['name']}.json", c["workspace"])
        for c in reference_cases["validation_cases"]
    }
    out["agc_5"] = str(shared / "oracles" / "agc-reference" / "workspace_5_files_per_process.json")
    out["bkg_A"] = _write(tmp, "bkg_A.json", sbottom["RegionA/BkgOnly.json"])
    for point in ("sbottom_1300_205_60", "sbottom_1400_950_60"):
        out[point] = _write(tmp, f"patch.{point}.json", sbottom[f"RegionA/patch.{point}.json"])
    patchset = {
        "metadata": {
            "references": {"hepdata": "ins1748602"},
            "description": "two sbottom points",
            "digests": {"sha256": pyhf.utils.digest(sbottom["RegionA/BkgOnly.json"])},
            "labels": ["m_sbottom", "m_n2", "m_n1"],
        },
        "patches": [
            {
                "metadata": {"name": p, "values": [int(v) for v in p.split("_")[1:]]},
                "patch": sbottom[f"RegionA/patch.{p}.json"],
            }
            for p in ("sbottom_1300_205_60", "sbottom_1400_950_60")
        ],
        "version": "1.0.0",
    }
    out["patchset"] = _write(tmp, "patchset.json", patchset)
    out["tmp"] = str(tmp)
    return out


INSPECTED = [
    "1bin_lumi_mu1",
    "2bin_2channel_coupledshapefactor_mu1",
    "2bin_2channel_couplednorm_mu1",
    "agc_5",
]


@pytest.mark.parametrize("name", INSPECTED)
def test_inspect_json_as_pyhf(files, capsys, tmp_path, name):
    expected = tmp_path / "pyhf.json"
    _pyhf("inspect", files[name], "--output-file", str(expected))
    code, ours, _ = _diffana(capsys, "inspect", files[name], "--json")
    assert code == 0
    assert ours == json.loads(expected.read_text())


def test_inspect_patched_background_only(files, sbottom, capsys, tmp_path):
    """A JSON patch is applied to the workspace first; pyhf inspects the jsonpatch result."""
    patched = jsonpatch.apply_patch(
        sbottom["RegionA/BkgOnly.json"], sbottom["RegionA/patch.sbottom_1300_205_60.json"]
    )
    expected = tmp_path / "pyhf.json"
    _pyhf("inspect", _write(tmp_path, "patched.json", patched), "--output-file", str(expected))
    code, ours, _ = _diffana(
        capsys, "inspect", files["bkg_A"], "--json", "-p", files["sbottom_1300_205_60"]
    )
    assert code == 0
    assert ours == json.loads(expected.read_text())
    code, by_patchset, _ = _diffana(
        capsys,
        "inspect",
        files["bkg_A"],
        "--json",
        "-p",
        files["patchset"],
        "--patch-name",
        "1300,205,60",
    )
    assert by_patchset == ours


def test_inspect_tables(files, capsys):
    code, out, _ = _diffana(capsys, "inspect", files["bkg_A"])  # no POI in the model: fine
    assert code == 0
    for word in (
        "Summary",
        "SR_meff",
        "VRtt_meff",
        "staterror_SR_meff",
        "constrained_by_normal",
        "NormalMeasurement",
    ):
        assert word in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["inspect", "{tmp}/missing.json"], ["ConfigError", "missing.json", "No such file"]),
        (["inspect", "{tmp}/bad.json"], ["WorkspaceError", "bad.json", "not valid JSON"]),
        (
            ["inspect", "{tmp}/invalid_ws.json"],
            ["WorkspaceError", "invalid_ws.json", "'measurements' is a required"],
        ),
        (
            ["inspect", "{bkg_A}", "-p", "{patchset}"],
            ["ConfigError", "patchset.json", "--patch-name"],
        ),
        (
            ["inspect", "{bkg_A}", "-p", "{patchset}", "--patch-name", "sbottom_9_9_9"],
            ["patchset.json", "no patch 'sbottom_9_9_9'"],
        ),
        (
            ["inspect", "{bkg_A}", "-p", "{sbottom_1300_205_60}", "--patch-name", "x"],
            ["ConfigError", "no --patch file is a PatchSet"],
        ),
        (
            ["inspect", "{bkg_A}", "-p", "{tmp}/not_a_patch.json"],
            ["not_a_patch.json", "neither a JSON Patch"],
        ),
        (
            [
                "inspect",
                "{1bin_lumi_mu1}",
                "-p",
                "{patchset}",
                "--patch-name",
                "sbottom_1300_205_60",
            ],
            ["patchset.json", "digest"],
        ),
        (
            ["fit", "{agc_5}", "--modifier-setting", "normsys:code1"],
            ["ConfigError", "--modifier-setting 'normsys:code1'", "TYPE=CODE"],
        ),
        (
            ["limit", "{agc_5}", "--scan", "5:0:11"],
            ["ConfigError", "--scan '5:0:11'", "LOW:HIGH:N"],
        ),
        (
            ["cls", "{agc_5}", "--ntoys", "0", "--calctype", "toybased"],
            ["ConfigError", "--ntoys 0"],
        ),
        (["cls", "{bkg_A}"], ["WorkspaceError", "POI 'mu_SIG'", "--patch"]),
        (
            ["cls", "{bkg_A}", "-p", "{sbottom_1300_205_60}", "-p", "{sbottom_1300_205_60}"],
            [
                "WorkspaceError",
                "patch 1, operation 1 ({'op': 'add', 'path': '/channels/2/samples/0'})",
                "does not apply",
            ],
        ),
    ],
)
def test_input_errors(files, capsys, argv, words):
    tmp = Path(files["tmp"])
    (tmp / "bad.json").write_text("{not json")
    (tmp / "invalid_ws.json").write_text(json.dumps({"channels": [], "version": "1.0.0"}))
    (tmp / "not_a_patch.json").write_text(json.dumps({"op": "add"}))
    code, _, err = _diffana(capsys, *(a.format(**files) for a in argv))
    assert code == 2
    err = " ".join(err.split())  # rich wraps long lines
    for word in words:
        assert word in err, err


def test_workspace_from_stdin(files, capsys, monkeypatch, tmp_path):
    expected = tmp_path / "pyhf.json"
    _pyhf("inspect", files["agc_5"], "--output-file", str(expected))
    monkeypatch.setattr("sys.stdin", io.StringIO(Path(files["agc_5"]).read_text()))
    code, ours, _ = _diffana(capsys, "inspect", "-", "--json")
    assert code == 0
    assert ours == json.loads(expected.read_text())


CODE1 = ("--modifier-setting", "normsys=code1")


def _close(ours, reference, rel):
    assert sorted(ours) == ["CLs_exp", "CLs_obs"]
    assert ours["CLs_obs"] == pytest.approx(reference["CLs_obs"], rel=rel)
    assert ours["CLs_exp"] == pytest.approx(reference["CLs_exp"], rel=rel)


@pytest.fixture(scope="module")
def readme(reference_cases, files) -> tuple[str, dict]:
    """pyhf's README model (2 bins, mu + shapesys): path and its reference numbers."""
    case = next(
        c
        for c in reference_cases["additional_references"]
        if c["name"] == "readme_simplemodel_qtilde"
    )
    return _write(Path(files["tmp"]), "readme.json", case["workspace"]), case


# the kinked coupled-histosys case (code0) with q, and the q0 discovery case
@pytest.mark.parametrize("name", ["2bin_2channel_coupledhistosys_mu1", "1bin_shapesys_q0_mu0"])
def test_cls_validation_cases(files, reference_cases, capsys, name):
    case = next(c for c in reference_cases["validation_cases"] if c["name"] == name)
    hypo = case["hypotest"]
    argv = ["cls", files[name], *CODE1, "--test-stat", hypo["test_stat"]]
    code, ours, _ = _diffana(capsys, *argv, "--test-poi", str(hypo["poi_test"]))
    assert code == 0
    _close(ours, case["reference_tight"], 1e-6)


def test_cls_defaults_as_pyhf_cli(readme, capsys):
    """Default options (qtilde, code4/code4p): the reference of pyhf's README ``pyhf cls``."""
    path, case = readme
    code, ours, _ = _diffana(capsys, "cls", path)
    assert code == 0
    _close(ours, case["reference_tight"], 1e-6)


def test_cls_sbottom_patchset(files, reference_cases, capsys):
    refs = next(
        c for c in reference_cases["additional_references"] if c["name"].startswith("sbottom")
    )
    argv = ["cls", files["bkg_A"], "-p", files["patchset"], "--patch-name", "1400,950,60"]
    code, ours, _ = _diffana(capsys, *argv)
    assert code == 0
    _close(ours, refs["reference_tight"]["RegionA/patch.sbottom_1400_950_60"], 1e-5)


def test_cls_toys(readme, capsys):
    """Toys agree with the asymptotic formulae within their statistical scatter (55 counts)."""
    path, case = readme
    code, ours, _ = _diffana(capsys, "cls", path, "--calctype", "toybased", "--ntoys", "500")
    assert code == 0
    tight = case["reference_tight"]
    assert ours["CLs_obs"] == pytest.approx(tight["CLs_obs"], abs=0.02)
    # the +2 sigma point sits in q~'s point mass at 0, where toys give CLs = 1 (as pyhf's do)
    assert ours["CLs_exp"][:4] == pytest.approx(tight["CLs_exp"][:4], abs=0.03)
    assert ours["CLs_exp"][4] >= tight["CLs_exp"][4]


def test_fit_as_pyhf(readme, capsys):
    """Best fit and twice_nll against pyhf at the exact optimum; uncertainties against the
    inverse of a finite-difference Hessian of pyhf's -log L at our best fit."""
    path, _ = readme
    code, ours, _ = _diffana(capsys, "fit", path)
    assert code == 0
    ws = pyhf.Workspace(json.loads(Path(path).read_text()))
    model = ws.model()
    data = ws.data(model)
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    try:
        best, twice_nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    assert sorted(ours) == ["bestfit", "converged", "labels", "twice_nll", "uncertainty"]
    assert ours["labels"] == model.config.par_names
    assert ours["converged"] is True
    assert ours["twice_nll"] == pytest.approx(float(twice_nll), rel=1e-9)
    assert ours["bestfit"] == pytest.approx(best.tolist(), rel=1e-5, abs=1e-6)
    x, h = np.asarray(ours["bestfit"]), 1e-4
    n = len(x)

    def nll(i, a, j, b):
        p = x.copy()
        p[i] += a
        p[j] += b
        return -float(model.logpdf(p, data)[0])

    hessian = [
        [(nll(i, h, j, h) - nll(i, h, j, -h) - nll(i, -h, j, h) + nll(i, -h, j, -h)) / (4 * h * h)
         for j in range(n)]
        for i in range(n)
    ]  # fmt: skip
    sigma = np.sqrt(np.diag(np.linalg.inv(hessian)))
    assert ours["uncertainty"] == pytest.approx(sigma.tolist(), rel=1e-5)


def test_limit_scan_and_root_finding(readme, capsys):
    path, case = readme
    refs = case["upper_limit_reference_test_infer"]
    code, ours, _ = _diffana(capsys, "limit", path, "--scan", "0:5:11")
    assert code == 0
    assert sorted(ours) == ["exp", "obs"]
    linear = refs["linear_scan_np.linspace(0,5,11)"]
    assert ours["obs"] == pytest.approx(linear["obs"], rel=1e-4)
    assert ours["exp"] == pytest.approx(linear["exp"], rel=1e-4)
    code, ours, _ = _diffana(capsys, "limit", path)
    root = refs["toms748_scan_rtol_1e-6"]
    assert ours["obs"] == pytest.approx(root["obs"], rel=1e-4)
    assert ours["exp"] == pytest.approx(root["exp"], rel=1e-4)
