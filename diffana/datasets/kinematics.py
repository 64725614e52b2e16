"""Relativistic kinematics and spectrum sampling for the synthetic event generator, in numpy.

Four-vectors are :class:`P4` tuples of equally shaped arrays ``(px, py, pz, e)`` in GeV. Every
function is vectorised over events. Spectra are drawn by inverting closed-form cumulative
distributions, so that a spectrum truncated to an interval (for example the jets above a
preselection threshold) is drawn exactly and without rejection loops.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "P4",
    "from_pt_eta_phi_m",
    "logistic_cdf",
    "logistic_eta",
    "lomax",
    "lomax_sf",
    "pt_eta_phi_m",
    "two_body_decay",
]

_TWO_PI = 2.0 * np.pi


class P4(NamedTuple):
    """A four-vector ``(px, py, pz, e)`` of arrays, in GeV."""

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray

    def __add__(self, other: P4) -> P4:  # type: ignore[override]
        return P4(self.px + other.px, self.py + other.py, self.pz + other.pz, self.e + other.e)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, int):
            return tuple.__getitem__(self, index)
        return P4(self.px[index], self.py[index], self.pz[index], self.e[index])

    def scaled(self, factor: np.ndarray | float) -> P4:
        """The four-vector with every component multiplied by ``factor`` (same direction)."""
        return P4(self.px * factor, self.py * factor, self.pz * factor, self.e * factor)

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def mass(self) -> np.ndarray:
        m2 = self.e**2 - self.px**2 - self.py**2 - self.pz**2
        return np.sqrt(np.maximum(m2, 0.0))


def from_pt_eta_phi_m(pt, eta, phi, mass) -> P4:
    """Build a four-vector from transverse momentum, pseudorapidity, azimuth and mass.

    Examples:
        >>> p = from_pt_eta_phi_m(np.array([30.0]), np.array([0.5]), np.array([1.0]), np.array([5.0]))
        >>> [round(float(x[0]), 4) for x in pt_eta_phi_m(p)]
        [30.0, 0.5, 1.0, 5.0]
    """
    pz = pt * np.sinh(eta)
    e = np.sqrt(pt**2 + pz**2 + mass**2)
    return P4(pt * np.cos(phi), pt * np.sin(phi), pz, e)


def pt_eta_phi_m(p: P4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity, azimuth and mass of a four-vector."""
    pt = p.pt
    eta = np.arcsinh(p.pz / np.maximum(pt, 1e-9))
    return pt, eta, np.arctan2(p.py, p.px), p.mass


def _boost(p: P4, parent: P4) -> P4:
    """Boost ``p`` from the rest frame of ``parent`` into the frame where ``parent`` is given."""
    m = parent.mass
    bx, by, bz = parent.px / parent.e, parent.py / parent.e, parent.pz / parent.e
    gamma = parent.e / m
    bp = bx * p.px + by * p.py + bz * p.pz
    b2 = bx * bx + by * by + bz * bz
    k = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0) * bp + gamma * p.e
    return P4(p.px + k * bx, p.py + k * by, p.pz + k * bz, gamma * (p.e + bp))


def two_body_decay(
    parent: P4, m1: float | np.ndarray, m2: float | np.ndarray, rng: np.random.Generator
) -> tuple[P4, P4]:
    """Decay ``parent`` isotropically in its rest frame into two particles of masses m1, m2.

    The momentum in the rest frame is ``p* = sqrt((M² - (m1+m2)²)(M² - (m1-m2)²)) / 2M``.

    Examples:
        >>> rng = np.random.default_rng(1)
        >>> top = from_pt_eta_phi_m(np.array([80.0]), np.array([0.3]), np.array([0.0]), np.array([172.5]))
        >>> w, b = two_body_decay(top, 80.4, 0.0, rng)
        >>> round(float((w + b).mass[0]), 6), round(float(w.mass[0]), 6)
        (172.5, 80.4)
    """
    big_m = parent.mass
    pstar2 = (big_m**2 - (m1 + m2) ** 2) * (big_m**2 - (m1 - m2) ** 2) / (4.0 * big_m**2)
    pstar = np.sqrt(np.maximum(pstar2, 0.0))
    n = big_m.shape
    cos_t = 2.0 * rng.random(n) - 1.0
    sin_t = np.sqrt(1.0 - cos_t**2)
    phi = _TWO_PI * rng.random(n)
    px, py, pz = pstar * sin_t * np.cos(phi), pstar * sin_t * np.sin(phi), pstar * cos_t
    d1 = P4(px, py, pz, np.sqrt(pstar**2 + np.square(m1)))
    d2 = P4(-px, -py, -pz, np.sqrt(pstar**2 + np.square(m2)))
    return _boost(d1, parent), _boost(d2, parent)


def lomax_sf(x, x0: float, scale: float, alpha: float):
    """Survival function ``P(X > x) = (1 + (x - x0)/scale)^-alpha`` of a Lomax spectrum above x0.

    A Lomax (shifted Pareto) spectrum falls like a power of pT, as jet spectra do; ``scale`` sets
    where the power law takes over. Truncated above any ``x1 >= x0`` it is again Lomax with
    ``x0 = x1`` and ``scale + x1 - x0``, so spectra above a threshold are drawn exactly.

    Examples:
        >>> round(float(lomax_sf(30.0, 15.0, 15.0, 2.0)), 4)
        0.25
    """
    return (1.0 + (np.asarray(x) - x0) / scale) ** (-alpha)


def lomax(u, x0: float, scale: float, alpha: float, x1: float = np.inf):
    """Invert the Lomax spectrum on ``[x0, x1)`` for uniform numbers ``u`` in [0, 1)."""
    s1 = lomax_sf(x1, x0, scale, alpha) if np.isfinite(x1) else 0.0
    sf = 1.0 - u * (1.0 - s1)  # uniform on (s1, 1]
    return x0 + scale * (sf ** (-1.0 / alpha) - 1.0)


def logistic_cdf(x, width: float):
    """Cumulative distribution of a logistic pseudorapidity profile of the given width."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x) / width))


def logistic_eta(u, width: float, lo, hi):
    """Invert a logistic pseudorapidity profile truncated to ``[lo, hi)`` for uniform ``u``.

    Examples:
        >>> x = logistic_eta(np.linspace(0, 0.999, 5), 1.2, -2.5, 2.5)
        >>> bool(np.all((x >= -2.5) & (x < 2.5)))
        True
    """
    c_lo, c_hi = logistic_cdf(lo, width), logistic_cdf(hi, width)
    c = c_lo + u * (c_hi - c_lo)
    return width * np.log(c / (1.0 - c))
