r"""Interpolation codes as *jets*: value, first and second derivative in closed form.

The fit needs :math:`\delta(\alpha), \delta'(\alpha), \delta''(\alpha)` (histosys) and
:math:`f, f', f''` (normsys) at every Newton iteration. The parts that depend only on the yields
(differences, code-2 and code-4 polynomial coefficients, logarithms of the factors) are computed
once per fit by :func:`prepare_histosys` / :func:`prepare_normsys`; :func:`histosys_jet` and
:func:`normsys_jet` then evaluate polynomials and exponentials only. The formulas are those of
:mod:`diffana.stats.interpolation`, differentiated by hand; the branch conventions at the kinks are
pyhf's (see that module), and the tests compare both with automatic differentiation.

Examples:
    >>> import jax.numpy as jnp
    >>> prep = prepare_normsys("code1", jnp.array(0.8), jnp.array(1.25))
    >>> [round(float(v), 6) for v in normsys_jet("code1", jnp.array(1.0), prep)]
    [1.25, 0.278929, 0.062241]
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array

from diffana.stats.interpolation import code4_coefficients

__all__ = ["histosys_jet", "normsys_jet", "prepare_histosys", "prepare_normsys"]


def prepare_histosys(code: str, lo: Array, nom: Array, hi: Array) -> tuple[Array, ...]:
    """Yield-only coefficients of an additive interpolation code."""
    up, dn = hi - nom, nom - lo
    if code == "code0":
        return up, dn
    if code == "code2":
        a = 0.5 * (hi + lo) - nom
        b = 0.5 * (hi - lo)
        return a, b, up, -dn
    return up, dn, 0.5 * (up + dn), 0.0625 * (up - dn)  # code4p


def histosys_jet(code: str, alpha: Array, prep: tuple[Array, ...]) -> tuple[Array, Array, Array]:
    """``(delta, delta', delta'')`` of an additive code at ``alpha`` (broadcast to ``prep``)."""
    if code == "code0":
        up, dn = prep
        slope = jnp.where(alpha > 0, up, dn)
        return alpha * slope, slope, jnp.zeros_like(slope)
    if code == "code2":
        a, b, up, down = prep
        above, below = alpha > 1, alpha < -1
        inner = (a * alpha + b) * alpha
        value = jnp.where(
            above,
            (b + 2 * a) * (alpha - 1) + up,
            jnp.where(below, (b - 2 * a) * (alpha + 1) + down, inner),
        )
        d1 = jnp.where(above, b + 2 * a, jnp.where(below, b - 2 * a, 2 * a * alpha + b))
        d2 = jnp.where(above | below, 0.0, 2 * a)
        return value, d1, d2
    up, dn, s, a = prep  # code4p
    a2 = alpha * alpha
    inner = alpha * (s + alpha * a * (15.0 + a2 * (-10.0 + a2 * 3.0)))
    inner1 = s + alpha * a * (30.0 + a2 * (-40.0 + a2 * 18.0))
    inner2 = a * (30.0 + a2 * (-120.0 + a2 * 90.0))
    above, below = alpha > 1, alpha < -1
    slope = jnp.where(above, up, dn)
    outside = above | below
    return (
        jnp.where(outside, alpha * slope, inner),
        jnp.where(outside, slope, inner1),
        jnp.where(outside, 0.0, inner2),
    )


def prepare_normsys(code: str, lo: Array, hi: Array) -> tuple[Array, ...]:
    """Yield-only coefficients of a multiplicative code (``lo``, ``hi`` > 0)."""
    log_lo, log_hi = jnp.log(lo), jnp.log(hi)
    if code == "code1":
        return log_lo, log_hi
    return log_lo, log_hi, code4_coefficients(lo, hi, log_lo, log_hi)


def normsys_jet(code: str, alpha: Array, prep: tuple[Array, ...]) -> tuple[Array, Array, Array]:
    """``(f, f', f'')`` of a multiplicative code at ``alpha`` (broadcast to ``prep``)."""
    log_lo, log_hi = prep[0], prep[1]
    if code == "code1":
        rate = jnp.where(alpha > 0, log_hi, -log_lo)
        value = jnp.exp(alpha * rate)
        return value, rate * value, rate * rate * value
    coeffs = prep[2]
    above, below = alpha >= 1, alpha <= -1
    rate = jnp.where(above, log_hi, -log_lo)
    outer = jnp.exp(alpha * rate)
    # Horner forms of 1 + sum a_i alpha^i and of its first two derivatives
    p = coeffs[5]
    p1 = 6.0 * coeffs[5]
    p2 = 30.0 * coeffs[5]
    for i in range(4, -1, -1):
        p = p * alpha + coeffs[i]
        p1 = p1 * alpha + (i + 1) * coeffs[i]
        if i >= 1:
            p2 = p2 * alpha + (i + 1) * i * coeffs[i]
    inner = 1.0 + p * alpha
    outside = above | below
    return (
        jnp.where(outside, outer, inner),
        jnp.where(outside, rate * outer, p1),
        jnp.where(outside, rate * rate * outer, p2),
    )
