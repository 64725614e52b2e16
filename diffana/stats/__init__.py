"""A HistFactory implementation in JAX: workspaces, models, fits and inference.

This subpackage imports nothing else of diffana and can be used on its own.
"""

from __future__ import annotations

__all__: list[str] = []
