from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def reference_cases(shared: Path) -> dict[str, Any]:
    """``oracles/pyhf-validation/reference_cases.json``: pyhf's validation suite and references."""
    path = shared / "oracles" / "pyhf-validation" / "reference_cases.json"
    return json.loads(path.read_text(encoding="utf-8"))


class _Archive:
    """Members of a ``.tar.gz`` of JSON files, parsed on first use and cached."""

    def __init__(self, path: Path) -> None:
        self._tar = tarfile.open(path)  # noqa: SIM115 (open for the whole session)
        self.names = self._tar.getnames()
        self._cache: dict[str, Any] = {}

    def __getitem__(self, member: str) -> Any:
        if member not in self._cache:
            handle = self._tar.extractfile(member)
            if handle is None:
                msg = f"{member} is not a file in the archive"
                raise KeyError(msg)
            self._cache[member] = json.load(handle)
        return self._cache[member]

    def close(self) -> None:
        self._tar.close()


@pytest.fixture(scope="session")
def sbottom(shared: Path):
    """The published ATLAS sbottom likelihood (ins1748602): ``sbottom["RegionA/BkgOnly.json"]``."""
    folder = shared / "oracles" / "published-likelihoods"
    archive = _Archive(folder / "pyhf-ins1748602-probability-models.tar.gz")
    yield archive
    archive.close()
