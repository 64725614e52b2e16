from __future__ import annotations

import subprocess
import sys

import pytest

import diffana
from diffana.cli import main


def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"diffana {diffana.__version__}"


def test_python_dash_m_runs_the_same_command():
    out = subprocess.run(
        [sys.executable, "-m", "diffana", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: diffana" in out.stdout
