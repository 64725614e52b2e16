from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only reference folder ``../shared`` (real data and numeric oracles)."""
    if not SHARED.is_dir():
        pytest.fail(
            f"the reference folder {SHARED} is missing; tests need ../shared beside the checkout"
        )
    return SHARED
