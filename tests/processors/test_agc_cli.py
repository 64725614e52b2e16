"""``diffana histograms`` on the real CMS file and on the synthetic fileset: valid JSON with the
documented structure and the AGC's numbers; bad ``--param`` values are clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diffana.cli import main
from diffana.errors import ConfigError
from diffana.processors import get_processor
from diffana.processors.output import parse_options, parse_params

LOOSEST = {"lepton_pt": 20.0, "jet_pt": 20.0, "btag": 0.2}


def _run(args: list[str], agc) -> int:
    return main(
        ["histograms", *args, "-q", "--chunk-size", str(agc.chunk), "--block-size", str(agc.block)]
    )


def _check_json(path, reference: dict) -> dict:
    data = json.loads(path.read_text())
    assert sorted(data) == sorted(reference)
    for name, entry in data.items():
        assert sorted(entry) == ["edges", "values", "variances"]
        assert len(entry["edges"]) == 26
        assert len(entry["values"]) == len(entry["variances"]) == 27
        h = reference[name]
        np.testing.assert_array_equal(entry["edges"], h.axes[0].edges)
        np.testing.assert_allclose(entry["values"], h.values(flow=True), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(
            entry["variances"], h.variances(flow=True), rtol=1e-12, atol=1e-9
        )
    return data


def test_histograms_of_the_real_cms_file(tmp_path, real_file, real_fileset, agc):
    out = tmp_path / "real.json"
    params = [f"--param={k}={v}" for k, v in LOOSEST.items()]
    assert _run([real_file, "-o", str(out), *params], agc) == 0
    data = _check_json(out, agc.histograms(real_fileset, LOOSEST))
    assert len(data) == 22  # 2 regions x (nominal, 8 b-tag and 2 jet-pT variations)
    assert sum(sum(e["values"]) for e in data.values()) > 0


def test_histograms_of_the_synthetic_fileset(tmp_path, agc_dataset, agc_fileset, agc):
    out = tmp_path / "sub" / "synthetic.json"
    assert _run([str(agc_dataset), "-o", str(out), "--param", "jet_pt=25"], agc) == 0
    params = {"lepton_pt": 30.0, "jet_pt": 25.0, "btag": 0.5}
    data = _check_json(out, agc.histograms(agc_fileset, params))
    assert len(data) == 122


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("jetpt=30", "unknown parameter 'jetpt'"),
        ("jet_pt=abc", "jet_pt must be a number in [20, 60]"),
        ("jet_pt=70", "jet_pt must be a number in [20, 60]"),
        ("btag=nan", "btag must be a number in [0.2, 0.9]"),
        ("jet_pt", "is not NAME=VALUE"),
    ],
)
def test_bad_params_are_config_errors_naming_the_parameter(
    tmp_path, real_file, capsys, param, expected
):
    assert main(["histograms", real_file, "-o", str(tmp_path / "x.json"), "--param", param]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "ConfigError" in err
    assert expected in err
    assert (
        "lepton_pt in [20, 60], jet_pt in [20, 60], btag in [0.2, 0.9]" in err
        or "NAME=VALUE" in err
    )
    assert not (tmp_path / "x.json").exists()


def test_parse_params_and_options():
    processor = get_processor("agc_ttbar")
    assert parse_params(processor, ["btag=0.7", "lepton_pt=25"]) == {
        "lepton_pt": 25.0,
        "jet_pt": 30.0,
        "btag": 0.7,
    }
    with pytest.raises(ConfigError, match="unknown parameter 'jet_eta'"):
        parse_params(processor, ["jet_eta=2.0"])
    assert parse_params(get_processor("agc_ttbar", jet_eta=True), ["jet_eta=2.0"])["jet_eta"] == 2.0
    assert parse_options(["jet_eta=true", "fill=sigmoid"]) == {"jet_eta": True, "fill": "sigmoid"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--processor", "agc_tbar"], "did you mean agc_ttbar"),
        (["--option", "max_jets=99"], "max_jets must be an integer from 4 to 16"),
        (["--option", "colour=red"], "does not take the options ['colour']"),
        (["--xsec", "1.0", "--max-files", "2"], "--max-files applies to the AGC's file list"),
    ],
)
def test_bad_processor_choices_are_config_errors(tmp_path, real_file, capsys, args, expected):
    assert main(["histograms", real_file, "-o", str(tmp_path / "x.json"), *args]) == 2
    assert expected in " ".join(capsys.readouterr().err.split())
