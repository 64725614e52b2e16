"""Processors by name, so command lines and workflow files can choose one.

A name is either a registered short name (``agc_ttbar``) or ``"package.module:Class"`` for any
importable :class:`~diffana.processors.base.Processor` subclass. Modules are imported only when a
processor is asked for.

Examples:
    >>> get_processor("agc_ttbar").parameter_names
    ('lepton_pt', 'jet_pt', 'btag')
    >>> get_processor("agc_ttbar", jet_eta=True).parameter_names[-1]
    'jet_eta'
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from diffana.errors import ConfigError
from diffana.processors.base import Processor

__all__ = ["PROCESSORS", "get_processor", "processor_class"]

#: registered processors: short name -> ``"module:Class"``
PROCESSORS: dict[str, str] = {
    "agc_ttbar": "diffana.processors.agc_ttbar:AGCTtbarProcessor",
}


def processor_class(name: str) -> type[Processor]:
    """The processor class of a registered name or of a ``"module:Class"`` path."""
    target = PROCESSORS.get(name, name)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        close = difflib.get_close_matches(name, PROCESSORS, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        msg = f"unknown processor {name!r}; {hint}choose one of {sorted(PROCESSORS)} or give 'package.module:Class'"
        raise ConfigError(msg)
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        msg = f"processor {name!r}: cannot import {class_name} from {module_name} ({exc})"
        raise ConfigError(msg) from exc
    if not (isinstance(cls, type) and issubclass(cls, Processor)):
        msg = f"processor {name!r}: {target} is not a diffana.processors.Processor subclass"
        raise ConfigError(msg)
    return cls


def get_processor(name: str, **options: Any) -> Processor:
    """An instance of the processor ``name`` built with ``options`` (its constructor's keywords)."""
    cls = processor_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        msg = f"processor {name!r} does not take the options {sorted(options)} ({exc})"
        raise ConfigError(msg) from exc
