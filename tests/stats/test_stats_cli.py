"""``diffana cls|fit|limit|inspect`` against pyhf's own CLI and API (numpy backend)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonpatch
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
