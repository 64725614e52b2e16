"""diffana: a columnar HEP analysis as a differentiable program at cluster scale.

Importing diffana turns on JAX's 64-bit mode (``jax_enable_x64``), as pyhf's JAX backend does:
likelihood fits need double precision. Kernels that are fast in single precision ask for float32
explicitly. It also raises XLA's size limit for loops compiled as one function
(:mod:`diffana._xla`), which takes effect when diffana is imported before JAX's first computation.
"""

from __future__ import annotations

from diffana import _xla

_xla.configure()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from diffana import errors  # noqa: E402
from diffana._version import __version__  # noqa: E402

__all__ = ["__version__", "errors"]
