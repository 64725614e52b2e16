"""A HistFactory implementation in JAX: workspaces, models, fits and inference.

This subpackage imports nothing else of diffana and can be used on its own.
"""

from __future__ import annotations

from diffana.stats.patchset import Patch, PatchSet
from diffana.stats.workspace import Workspace

__all__: list[str] = ["Patch", "PatchSet", "Workspace"]
