"""Interpolation codes of HistFactory: how a systematic variation depends on its nuisance parameter.

A ``histosys`` modifier adds ``delta(alpha)`` to a sample's nominal histogram (additive codes
``code0``, ``code2``, ``code4p``); a ``normsys`` modifier multiplies it by ``factor(alpha)``
(multiplicative codes ``code1``, ``code4``). All functions are elementwise and broadcast, so one
call interpolates every modifier, sample and bin at once. The formulas are those of the HistFactory
manual (CERN-OPEN-2012-016) and ROOT's ``PiecewiseInterpolation`` / ``FlexibleInterpVar``, with pyhf's
conventions at the branch boundaries (``alpha > 0`` selects the up variation for codes 0 and 1).

``code0`` and ``code1`` have a kink at ``alpha = 0`` (the derivative jumps there); the fit treats
parameters that enter through these codes specially (see :mod:`diffana.stats.optimize`).

Deviation from pyhf 0.7.6: pyhf's ``code2`` drops the constant offset of the linear extrapolation,
so its interpolation jumps at ``|alpha| = 1`` (scikit-hep/pyhf#2729). Here ``code2`` is ROOT's
continuous version; inside ``|alpha| <= 1`` the two agree exactly.

Examples:
    >>> import jax.numpy as jnp
    >>> float(code0(jnp.asarray(0.5), 90.0, 100.0, 120.0))
    10.0
    >>> float(code1(jnp.asarray(-2.0), 0.9, 1.1))  # 0.9 ** 2
    0.81
    >>> round(float(code4(jnp.asarray(0.0), 0.9, 1.1)), 12)
    1.0
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

__all__ = [
    "ADDITIVE_CODES",
    "KINKED_CODES",
    "MULTIPLICATIVE_CODES",
    "code0",
    "code1",
    "code2",
    "code4",
    "code4_coefficients",
    "code4p",
    "histosys_delta",
    "normsys_factor",
]

ADDITIVE_CODES = ("code0", "code2", "code4p")
"""Interpolation codes a ``histosys`` modifier accepts."""
MULTIPLICATIVE_CODES = ("code1", "code4")
"""Interpolation codes a ``normsys`` modifier accepts."""
KINKED_CODES = frozenset({"code0", "code1"})
"""Codes whose first derivative is discontinuous at ``alpha = 0``."""

# Inverse of the 6x6 system fixing the code-4 polynomial (value, first and second derivative
# continuous at alpha = +-1), as in ROOT's FlexibleInterpVar and pyhf's code4 with alpha0 = 1.
_CODE4_AINV = np.array(
    [
        [15.0 / 16, -15.0 / 16, -7.0 / 16, -7.0 / 16, 1.0 / 16, -1.0 / 16],
        [3.0 / 2, 3.0 / 2, -9.0 / 16, 9.0 / 16, 1.0 / 16, 1.0 / 16],
        [-5.0 / 8, 5.0 / 8, 5.0 / 8, 5.0 / 8, -1.0 / 8, 1.0 / 8],
        [-3.0 / 2, -3.0 / 2, 7.0 / 8, -7.0 / 8, -1.0 / 8, -1.0 / 8],
        [3.0 / 16, -3.0 / 16, -3.0 / 16, -3.0 / 16, 1.0 / 16, -1.0 / 16],
        [1.0 / 2, 1.0 / 2, -5.0 / 16, 5.0 / 16, 1.0 / 16, 1.0 / 16],
    ]
)


def code4_coefficients(lo, hi, log_lo, log_hi):
    """The six polynomial coefficients of code 4 inside ``|alpha| < 1`` (leading axis of 6).

    Written as a broadcast product and sum rather than a matrix product: in a loop XLA compiles as
    one function that is a fraction of the compile time.

    Examples:
        >>> import jax.numpy as jnp
        >>> lo, hi = jnp.array(0.9), jnp.array(1.2)
        >>> c = code4_coefficients(lo, hi, jnp.log(lo), jnp.log(hi))
        >>> round(float(1 + c.sum()), 12)  # continuous at alpha = 1, where the factor is hi
        1.2
    """
    rhs = jnp.stack([hi - 1.0, lo - 1.0, log_hi * hi, -log_lo * lo, log_hi**2 * hi, log_lo**2 * lo])
    ainv = _CODE4_AINV.reshape(6, 6, *(1,) * (rhs.ndim - 1))
    return jnp.sum(ainv * rhs[None], axis=1)


def code0(alpha: ArrayLike, lo: ArrayLike, nom: ArrayLike, hi: ArrayLike) -> Array:
    r"""Piecewise-linear additive interpolation (code 0).

    .. math:: \delta(\alpha) = \alpha\,(I^+ - I^0) \text{ if } \alpha > 0 \text{ else } \alpha\,(I^0 - I^-)
    """
    alpha = jnp.asarray(alpha)
    return jnp.where(alpha > 0, alpha * (hi - nom), alpha * (nom - lo))


def code2(alpha: ArrayLike, lo: ArrayLike, nom: ArrayLike, hi: ArrayLike) -> Array:
    r"""Quadratic interpolation, linear extrapolation (code 2, ROOT's continuous form).

    With :math:`a = (I^+ + I^-)/2 - I^0` and :math:`b = (I^+ - I^-)/2`:
    :math:`\delta = a\alpha^2 + b\alpha` for :math:`|\alpha| \le 1`,
    :math:`(b + 2a)(\alpha - 1) + I^+ - I^0` above and :math:`(b - 2a)(\alpha + 1) + I^- - I^0` below.
    """
    alpha = jnp.asarray(alpha)
    a = 0.5 * (hi + lo) - nom
    b = 0.5 * (hi - lo)
    inner = a * alpha * alpha + b * alpha
    above = (b + 2 * a) * (alpha - 1) + (hi - nom)
    below = (b - 2 * a) * (alpha + 1) + (lo - nom)
    return jnp.where(alpha > 1, above, jnp.where(alpha < -1, below, inner))


def code4p(alpha: ArrayLike, lo: ArrayLike, nom: ArrayLike, hi: ArrayLike) -> Array:
    r"""Polynomial interpolation, linear extrapolation (code 4p), smooth at :math:`\alpha = \pm 1`.

    With :math:`S = (\delta^+ + \delta^-)/2` and :math:`A = (\delta^+ - \delta^-)/16`:
    :math:`\delta = \alpha\,(S + \alpha A (15 - 10\alpha^2 + 3\alpha^4))` for :math:`|\alpha| \le 1`,
    linear (code 0) outside.
    """
    alpha = jnp.asarray(alpha)
    up = hi - nom
    dn = nom - lo
    s = 0.5 * (up + dn)
    a = 0.0625 * (up - dn)
    a2 = alpha * alpha
    inner = alpha * (s + alpha * a * (15.0 + a2 * (-10.0 + a2 * 3.0)))
    return jnp.where(alpha > 1, alpha * up, jnp.where(alpha < -1, alpha * dn, inner))


def code1(alpha: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> Array:
    r"""Piecewise-exponential multiplicative interpolation (code 1).

    .. math:: f(\alpha) = (I^+/I^0)^{\alpha} \text{ if } \alpha > 0 \text{ else } (I^-/I^0)^{-\alpha}
    """
    alpha = jnp.asarray(alpha)
    return jnp.where(alpha > 0, jnp.power(hi, alpha), jnp.power(lo, -alpha))


def code4(alpha: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> Array:
    r"""Polynomial interpolation, exponential extrapolation (code 4), with :math:`\alpha_0 = 1`.

    :math:`f = (I^+)^{\alpha}` for :math:`\alpha \ge 1`, :math:`(I^-)^{-\alpha}` for
    :math:`\alpha \le -1` and :math:`1 + \sum_{i=1}^{6} a_i \alpha^i` in between, the :math:`a_i`
    making value, first and second derivative continuous at :math:`\pm 1`. ``lo`` and ``hi`` must
    be positive.
    """
    alpha, lo, hi = jnp.broadcast_arrays(jnp.asarray(alpha), jnp.asarray(lo), jnp.asarray(hi))
    log_hi = jnp.log(hi)
    log_lo = jnp.log(lo)
    coeffs = code4_coefficients(lo, hi, log_lo, log_hi)
    powers = jnp.stack([alpha**i for i in range(1, 7)])
    inner = 1.0 + jnp.sum(coeffs * powers, axis=0)
    above = jnp.exp(alpha * log_hi)
    below = jnp.exp(-alpha * log_lo)
    return jnp.where(alpha >= 1, above, jnp.where(alpha > -1, inner, below))


_ADDITIVE = {"code0": code0, "code2": code2, "code4p": code4p}
_MULTIPLICATIVE = {"code1": code1, "code4": code4}


def histosys_delta(code: str, alpha: ArrayLike, lo: ArrayLike, nom: ArrayLike, hi: ArrayLike):
    """Additive shift of a ``histosys`` modifier with interpolation ``code``.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(histosys_delta("code4p", jnp.asarray(2.0), 90.0, 100.0, 120.0))
        40.0
    """
    return _ADDITIVE[code](alpha, lo, nom, hi)


def normsys_factor(code: str, alpha: ArrayLike, lo: ArrayLike, hi: ArrayLike):
    """Multiplicative factor of a ``normsys`` modifier with interpolation ``code``.

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(normsys_factor("code4", jnp.asarray(1.0), 0.9, 1.1)), 12)
        1.1
    """
    return _MULTIPLICATIVE[code](alpha, lo, hi)
