"""A HistFactory implementation in JAX: workspaces, models, fits and inference.

This subpackage imports nothing else of diffana and can be used on its own.
"""

from __future__ import annotations

from diffana.stats.build import build_spec
from diffana.stats.build_histograms import agc_pseudodata
from diffana.stats.hs3 import to_hs3
from diffana.stats.patchset import Patch, PatchSet
from diffana.stats.workspace import Workspace

__all__: list[str] = ["Patch", "PatchSet", "Workspace", "agc_pseudodata", "build_spec", "to_hs3"]
