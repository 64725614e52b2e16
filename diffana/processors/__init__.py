"""Coffea-style processors: which branches, which objects, which soft selections."""

from __future__ import annotations

from typing import Any

from diffana.processors.base import Chunk, ColumnBlock, Parameter, Processor
from diffana.processors.registry import PROCESSORS, get_processor

__all__ = [
    "PROCESSORS",
    "Chunk",
    "CoffeaProcessor",
    "ColumnBlock",
    "Parameter",
    "Processor",
    "get_processor",
]


def __getattr__(name: str) -> Any:  # coffea is slow to import: load the adapter on first use
    if name == "CoffeaProcessor":
        from diffana.processors.coffea_adapter import CoffeaProcessor

        return CoffeaProcessor
    msg = f"module 'diffana.processors' has no attribute {name!r}"
    raise AttributeError(msg)
