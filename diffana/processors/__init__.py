"""Coffea-style processors: which branches, which objects, which soft selections."""

from __future__ import annotations

from diffana.processors.base import Chunk, ColumnBlock, Parameter, Processor

__all__ = ["Chunk", "ColumnBlock", "Parameter", "Processor"]
