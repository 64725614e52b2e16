"""Synthetic NanoAOD-like datasets and coffea-format filesets."""

from __future__ import annotations

__all__: list[str] = []
