"""The hardness convention every soft op follows, and the helpers that apply it.

Every soft op takes ``hardness``: a positive scalar multiplying every sharpness. A cut of width ``w``
(in the variable's units, e.g. 5 GeV for a pT cut) is ``sigmoid((x - t) * hardness / w)``; a kernel
density estimate with bandwidth ``b`` smooths with ``b / hardness``. Passing :data:`HARD` (the Python
float ``math.inf``, known at trace time) selects the exact hard twin: boolean steps as 0/1 weights and
exact bin assignment identical to ``hist.Hist``. Any finite hardness may be a traced JAX value, so an
optimisation loop can anneal it without recompiling; pass :data:`HARD` as a static argument of
``jax.jit`` (a traced infinity is not recognised as hard).

Soft ops compute in the floating dtype of their data (``x``), so float32 columns give float32
kernels; thresholds, widths and the hardness are cast to that dtype, and their gradients flow back
in their own dtype.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffana.errors import ConfigError

__all__ = ["HARD", "concrete_float", "float_dtype", "is_hard"]

HARD: float = math.inf
"""The hardness of the exact hard twin: pass it (a Python float) as ``hardness``."""


def concrete_float(value: Any) -> float | None:
    """The value as a Python float if it is known at trace time, else ``None``.

    Examples:
        >>> concrete_float(2), concrete_float(jnp.float32(0.5))
        (2.0, 0.5)
    """
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return None


def is_hard(hardness: Any) -> bool:
    """Whether ``hardness`` asks for the exact hard twin; rejects known non-positive values.

    Examples:
        >>> is_hard(HARD), is_hard(10.0)
        (True, False)
    """
    value = concrete_float(hardness)
    if value is None:
        return False
    if not value > 0:
        msg = (
            f"hardness must be a positive number or diffana.pipeline.HARD, got {value!r}; "
            "it multiplies every sharpness (pass HARD for the exact hard twin)"
        )
        raise ConfigError(msg)
    return math.isinf(value)


def float_dtype(*arrays: Any) -> jnp.dtype:
    """The floating dtype a soft op computes in: that of its data, at least the default float.

    Integer or boolean data computes in JAX's default float (float64 once diffana is imported).

    Examples:
        >>> float_dtype(np.zeros(3, np.float32)).name
        'float32'
    """
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return jnp.dtype(dtype)
