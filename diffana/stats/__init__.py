"""A HistFactory implementation in JAX: workspaces, models, fits and inference.

This subpackage imports nothing else of diffana and can be used on its own.
"""

from __future__ import annotations

from diffana.stats.build import build_spec
from diffana.stats.build_histograms import agc_pseudodata
from diffana.stats.hs3 import to_hs3
from diffana.stats.model import Model
from diffana.stats.patchset import Patch, PatchSet
from diffana.stats.structure import ModelStructure, structure_from_spec
from diffana.stats.workspace import Workspace
from diffana.stats.yields import Yields, yields_from_spec

__all__: list[str] = [
    "Model",
    "ModelStructure",
    "Patch",
    "PatchSet",
    "Workspace",
    "Yields",
    "agc_pseudodata",
    "build_spec",
    "structure_from_spec",
    "to_hs3",
    "yields_from_spec",
]
