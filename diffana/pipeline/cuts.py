"""Sigmoid cuts and windows on event or object variables, and the logic that combines them.

A cut keeps an event (or object) with weight ``sigmoid(s * (x - t) * hardness / width)``, ``s = +1``
for ``>``/``>=`` and ``-1`` for ``<``/``<=``: ``width`` is the slope of the sigmoid in the variable's
units (the distance over which the weight goes from 0.27 to 0.73 at hardness 1), ``t`` the threshold.
Read it as the probability that the object passes a hard cut whose threshold is smeared by a logistic
distribution of scale ``width / hardness``; the weights of independent cuts then multiply.
With ``hardness=HARD`` the cut is the exact step (``>`` and ``>=`` differ only there) as 0/1 weights,
equal to the boolean selection with NumPy or awkward. The comparison happens in the dtype of ``x``
(thresholds are cast to it, as NumPy 2 does for a Python float), and NaN fails every cut, soft or hard.

Weights combine like probabilities of independent events: ``logical_and`` multiplies,
``logical_or`` is ``1 - (1 - a)(1 - b)``, ``logical_not`` is ``1 - a``; all are exact on 0/1 weights.

The derivative is a hand-written rule (``jax.custom_jvp``): ``sigmoid'(z) = s(1 - s)`` times the
tangent of ``z``, with the term through the width or hardness set to zero where the sigmoid has
saturated, so gradients stay finite for infinite or huge ``x`` and sharpness up to 1e4.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from diffana._types import Hardness, Scalar, Values
from diffana.errors import ConfigError
from diffana.pipeline.hardness import float_dtype, is_hard

__all__ = ["cut", "logical_and", "logical_not", "logical_or", "window"]

Comparison = Literal[">", ">=", "<", "<="]
_SIGNS = {">": 1.0, ">=": 1.0, "<": -1.0, "<=": -1.0}
_CLOSED = {"left": (">=", "<"), "right": (">", "<="), "both": (">=", "<="), "neither": (">", "<")}


@jax.custom_jvp
def _step(x: Values, threshold: Values, rate: Values) -> Values:
    """``sigmoid((x - threshold) * rate)``, 0 where ``x`` is NaN."""
    z = (x - threshold) * rate
    return jnp.where(jnp.isnan(x), 0.0, 1.0 / (1.0 + jnp.exp(-z)))


def _step_jvp(primals: tuple[Values, ...], tangents: tuple[Any, ...]) -> tuple[Values, Values]:
    x, threshold, rate = primals
    dx, dthreshold, drate = tangents
    out = _step(x, threshold, rate)
    slope = jnp.where(jnp.isnan(x), 0.0, out * (1.0 - out))
    dz = jnp.zeros_like(out)
    if not isinstance(dx, SymbolicZero):
        dz = dz + dx * rate
    if not isinstance(dthreshold, SymbolicZero):
        dz = dz - dthreshold * rate
    dout = slope * dz
    if not isinstance(drate, SymbolicZero):
        # slope * (x - t) vanishes where the sigmoid saturates; keep inf * 0 from becoming NaN.
        offset = jnp.where(slope > 0, slope * (x - threshold), 0.0)
        dout = dout + offset * drate
    return out, dout


_step.defjvp(_step_jvp, symbolic_zeros=True)


def cut(
    x: Values,
    threshold: Scalar,
    *,
    width: Scalar,
    hardness: Hardness,
    op: Comparison = ">",
    mask: Values | None = None,
) -> Values:
    """Weight of ``x op threshold``: a sigmoid of slope ``width / hardness``, exact when hard.

    Args:
        x: the variable, any shape (events, or events x objects).
        threshold: the cut value (a differentiable parameter), broadcast against ``x``.
        width: the sigmoid's slope in the units of ``x`` at hardness 1 (e.g. 5.0 GeV).
        hardness: multiplies the sharpness; :data:`~diffana.pipeline.HARD` gives the exact step.
        op: one of ``">"``, ``">="``, ``"<"``, ``"<="``.
        mask: optional boolean array; weights are 0 where it is False (padding objects).

    Returns:
        Weights in [0, 1] of the shape of ``x`` and its dtype.

    Examples:
        >>> import numpy as np
        >>> from diffana.pipeline import HARD
        >>> x = np.array([20.0, 30.0, 40.0])
        >>> cut(x, 30.0, width=5.0, hardness=HARD).tolist()
        [0.0, 0.0, 1.0]
        >>> np.round(cut(x, 30.0, width=5.0, hardness=1.0), 4).tolist()
        [0.1192, 0.5, 0.8808]
    """
    if op not in _SIGNS:
        msg = f"cut op must be one of {sorted(_SIGNS)}, got {op!r}"
        raise ConfigError(msg)
    dtype = float_dtype(x)
    x = jnp.asarray(x, dtype)
    threshold = jnp.asarray(threshold, dtype)
    if is_hard(hardness):
        compare = {">": jnp.greater, ">=": jnp.greater_equal, "<": jnp.less, "<=": jnp.less_equal}
        weight = compare[op](x, threshold).astype(dtype)
    else:
        rate = _SIGNS[op] * jnp.asarray(hardness, dtype) / jnp.asarray(width, dtype)
        weight = _step(x, threshold, rate)
    if mask is not None:
        weight = jnp.where(mask, weight, 0.0)
    return weight


def window(
    x: Values,
    low: Scalar,
    high: Scalar,
    *,
    width: Scalar,
    hardness: Hardness,
    closed: Literal["left", "right", "both", "neither"] = "left",
    mask: Values | None = None,
) -> Values:
    """Weight of ``low <= x < high`` (``closed`` picks which ends are included when hard).

    The soft window is the product of the two sigmoid cuts, each of slope ``width / hardness``.

    Examples:
        >>> import numpy as np
        >>> from diffana.pipeline import HARD
        >>> window(np.array([0.5, 1.0, 2.0, 3.0]), 1.0, 3.0, width=0.1, hardness=HARD).tolist()
        [0.0, 1.0, 1.0, 0.0]
    """
    if closed not in _CLOSED:
        msg = f"window closed must be one of {sorted(_CLOSED)}, got {closed!r}"
        raise ConfigError(msg)
    low_op, high_op = _CLOSED[closed]
    above = cut(x, low, width=width, hardness=hardness, op=low_op)
    below = cut(x, high, width=width, hardness=hardness, op=high_op, mask=mask)
    return above * below


def logical_and(*weights: Values) -> Values:
    """Probability that all independent selections pass: the product of their weights.

    Examples:
        >>> float(logical_and(0.5, 0.5, 1.0))
        0.25
    """
    return functools.reduce(operator.mul, map(jnp.asarray, weights))


def logical_or(*weights: Values) -> Values:
    """Probability that at least one independent selection passes: ``1 - prod(1 - w)``.

    Examples:
        >>> float(logical_or(0.5, 0.5))
        0.75
    """
    return 1.0 - functools.reduce(operator.mul, (1.0 - jnp.asarray(w) for w in weights))


def logical_not(weight: Values) -> Values:
    """Probability that a selection fails: ``1 - w``.

    Examples:
        >>> float(logical_not(0.25))
        0.75
    """
    return 1.0 - jnp.asarray(weight)
