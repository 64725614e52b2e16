r"""Value, gradient and Hessian of the fit objective, assembled from the model's product structure.

The expected yield of sample :math:`s` in bin :math:`b` is
:math:`\nu_{sb} = A_{sb}(\alpha)\,E_{sb}(\alpha)\,L_{sb}(x)` with the additive histosys part
:math:`A = \nu^0 + \sum_h \delta_h(\alpha_h)`, the normsys product :math:`E = \prod_k f_k(\alpha_k)`
(positive factors) and the product of linear factors :math:`L = \prod_l x_{p_l(b)}` (normfactor, lumi,
shapefactor, shapesys, staterror; possibly zero). Every factor depends on one parameter, so the
first and second derivatives of :math:`\nu` follow from the product rule with per-entry scalar
derivatives :math:`\delta', \delta'', f', f''` (closed forms, :mod:`diffana.stats.jets`) and
exclusive products of the linear factors. With the Poisson deviance
:math:`d(n, \lambda) = 2(\lambda - n - n\ln(\lambda/n))`, :math:`\lambda_b = \sum_s \nu_{sb}`:

.. math:: \nabla^2 D = J^\top \mathrm{diag}(d'') J + \sum_{sb} d'_b\, \nabla^2 \nu_{sb}
    + \text{(diagonal constraint terms)}

Every block is a small contraction over samples and bins, scatter-added at the parameters' indices,
so the exact Hessian costs about as much as a few evaluations instead of one reverse pass per
parameter. The result
equals ``jax.hessian`` of :func:`diffana.stats.likelihood.deviance` (tested); models with yield
clipping fall back to it.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from diffana.stats import Model
    >>> from diffana.stats.likelihood import deviance
    >>> spec = {"channels": [{"name": "sr", "samples": [
    ...     {"name": "sig", "data": [12.0, 11.0], "modifiers": [
    ...         {"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "bkg", "data": [50.0, 52.0], "modifiers": [
    ...         {"name": "unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}]}
    >>> m = Model(spec)
    >>> x, d = jnp.array([0.5, 1.1, 0.9]), jnp.array([51.0, 48.0] + m.config.auxdata)
    >>> f, g, h = deviance_derivatives(m.structure, m.yields, x, d, order=2)
    >>> bool(jnp.allclose(h, jax.hessian(deviance, 2)(m.structure, m.yields, x, d)))
    True
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from diffana.stats.jets import histosys_jet, normsys_jet, prepare_histosys, prepare_normsys
from diffana.stats.likelihood import _poisson_deviance, constraint_widths, deviance
from diffana.stats.optimize import SMALL_MODEL
from diffana.stats.structure import ModelStructure
from diffana.stats.yields import Yields

__all__ = ["Prepared", "deviance_derivatives", "prepare", "prepared_derivatives"]


class Prepared(NamedTuple):
    """Yield-only quantities of the objective, computed once per fit (outside the Newton loop)."""

    nominal: Array
    histosys: tuple
    normsys: tuple
    sigma: Array
    tau: Array


def prepare(structure: ModelStructure, yields: Yields) -> Prepared:
    """Interpolation coefficients and constraint widths of ``yields``."""
    t = structure.tables
    hs = ns = ()
    if len(t["histosys_par"]):
        hs = prepare_histosys(
            structure.histosys_code, yields.histosys_lo, yields.nominal, yields.histosys_hi
        )
    if len(t["normsys_par"]):
        ns = prepare_normsys(structure.normsys_code, yields.normsys_lo, yields.normsys_hi)
    sigma, tau = constraint_widths(structure, yields)
    return Prepared(yields.nominal, hs, ns, sigma, tau)


def _histosys(structure, prep, pars, order):
    t = structure.tables
    alpha = pars[t["histosys_par"]][:, None, None]
    jet = histosys_jet(structure.histosys_code, alpha, prep.histosys)
    mask = t["histosys_mask"]
    return tuple(jnp.where(mask, v, 0.0) for v in jet[: order + 1]) + (None,) * (2 - order)


def _normsys(structure, prep, pars, order):
    """Product of the normsys factors per sample and bin, and each factor's log-derivatives."""
    t = structure.tables
    alpha = pars[t["normsys_par"]][:, None, None]
    f, f1, f2 = normsys_jet(structure.normsys_code, alpha, prep.normsys)
    mask, to_bins = t["normsys_cmask"], t["bin_channel"]
    f = jnp.where(mask, f, 1.0)
    total = jnp.prod(f, axis=0)[:, to_bins]
    if order == 0:
        return total, None, None
    r = jnp.where(mask, f1 / f, 0.0)[:, :, to_bins]
    s = jnp.where(mask, f2 / f, 0.0)[:, :, to_bins]
    return total, r, s


def _linear(structure, pars, order):
    """Product of the linear factors, its exclusive products over one and over two factors."""
    t = structure.tables
    active = jnp.asarray(t["factor_mask"])
    g = jnp.where(active, pars[t["factor_par"]][:, None, :], 1.0)
    zero = active & (g == 0)
    nonzero = jnp.where(zero, 1.0, g)
    prod = jnp.prod(nonzero, axis=0)
    nzero = jnp.sum(zero, axis=0)
    total = jnp.where(nzero == 0, prod, 0.0)
    if order == 0:
        return total, None, None
    single = jnp.where(active & (nzero - zero == 0), prod / nonzero, 0.0)
    if order == 1:
        return total, single, None
    m = g.shape[0]
    off = ~jnp.eye(m, dtype=bool)[:, :, None, None]
    pair_active = active[:, None] & active[None, :] & off
    others_zero = nzero - zero[:, None] - zero[None, :]
    pair = prod / (nonzero[:, None] * nonzero[None, :])
    return total, single, jnp.where(pair_active & (others_zero == 0), pair, 0.0)


def _rates(structure, prep, pars, order):
    """Per-sample rates and the factors' derivatives needed up to ``order``."""
    t = structure.tables
    hs = _histosys(structure, prep, pars, order) if len(t["histosys_par"]) else None
    ns = _normsys(structure, prep, pars, order) if len(t["normsys_par"]) else None
    lin = _linear(structure, pars, order) if len(t["factor_par"]) else None
    add = prep.nominal + (jnp.sum(hs[0], axis=0) if hs else 0.0)
    norm = ns[0] if ns else jnp.ones_like(add)
    lin_total = lin[0] if lin else jnp.ones_like(add)
    return add, norm, lin_total, hs, ns, lin


def deviance_derivatives(
    structure: ModelStructure, yields: Yields, pars: ArrayLike, data: ArrayLike, order: int = 2
) -> tuple[Array, ...]:
    """The deviance (``twice_nll`` up to a constant) and its derivatives up to ``order`` (0-2).

    Returns:
        ``(value,)``, ``(value, gradient)`` or ``(value, gradient, hessian)``.
    """
    pars, data = jnp.asarray(pars), jnp.asarray(data)
    if structure.clip_sample_data is not None or structure.clip_bin_data is not None:
        return _autodiff(structure, yields, pars, data, order)
    return prepared_derivatives(structure, prepare(structure, yields), pars, data, order)


def prepared_derivatives(
    structure: ModelStructure,
    prep: Prepared,
    pars: Array,
    data: Array,
    order: int = 2,
    mirrored: bool = False,
    gauss_newton: bool = False,
) -> tuple[Array, ...]:
    r""":func:`deviance_derivatives` with the yield-only part already :func:`prepare` d.

    With ``gauss_newton`` (and ``order=2``) the Hessian is followed by its Gauss-Newton part,
    :math:`J^\top \mathrm{diag}(2n/\lambda^2) J` plus the constraint terms, which is positive
    semi-definite where the Hessian need not be (the fit's fallback far from the minimum).
    With ``mirrored`` (and ``order=2``) the last value returned is the gradient at the point
    whose kinked parameters (code-0 histosys, code-1 normsys) have the opposite sign. For a
    parameter sitting on its kink it is the one-sided derivative on the other side.
    """
    t = structure.tables
    nb = structure.nbins
    n, aux = data[:nb], data[nb:]
    add, norm, lin_total, hs, ns, lin = _rates(structure, prep, pars, order)
    nu = add * norm * lin_total
    lam = jnp.sum(nu, axis=0)
    sigma, tau = prep.sigma, prep.tau
    gx, gaux = pars[t["gauss_par"]], aux[t["gauss_pos"]]
    px, paux = pars[t["pois_par"]], aux[t["pois_pos"]]
    value = jnp.sum(_poisson_deviance(n, lam))
    value += jnp.sum(((gaux - gx) / sigma) ** 2) + jnp.sum(_poisson_deviance(paux, px * tau))
    if order == 0:
        return (value,)
    d1 = 2.0 * (1.0 - n / lam)
    jac = jnp.zeros((structure.npars, nb))
    if hs:
        jac = _add_at(jac, t["histosys_par"], jnp.sum((norm * lin_total)[None] * hs[1], axis=1))
    if ns:
        jac = _add_at(jac, t["normsys_par"], jnp.sum(nu[None] * ns[1], axis=1))
    if lin:
        rows = jnp.sum((add * norm)[None] * lin[1], axis=1)
        jac = _add_at(jac, (t["factor_par"], np.arange(nb)[None, :]), rows)
    small = structure.npars <= SMALL_MODEL
    grad = _einsum("nb,b->n", jac, d1, small=small)
    grad = _add_at(grad, t["gauss_par"], -2.0 * (gaux - gx) / sigma**2)
    grad = _add_at(grad, t["pois_par"], 2.0 * (tau - paux / px))
    if order == 1:
        return value, grad
    d2 = 2.0 * n / lam**2
    diag = jnp.zeros(structure.npars)
    diag = _add_at(diag, t["gauss_par"], 2.0 / sigma**2)
    diag = _add_at(diag, t["pois_par"], 2.0 * paux / px**2)
    first = _gram(t, jac, d2, small) + jnp.diag(diag)
    second = _weighted_second(t, d1, add, norm, lin_total, nu, hs, ns, lin, small)
    out = (value, grad, first + second)
    if gauss_newton:
        out += (first,)
    if mirrored:
        out += (_mirrored(structure, prep, pars, grad, d1, nu, norm, lin_total, hs, ns, small),)
    return out


def _gram(t, jac: Array, d2: Array, small: bool) -> Array:
    """``J diag(d2) J^T``; for larger models whose parameters share few bins, over those pairs only.

    Per-bin parameters (shapesys, staterror, shapefactor) make ``J`` mostly zeros: a 50-bin
    shapesys model's 51 x 51 product over 50 bins (130k multiply-adds) has 200 non-zero terms, and
    gathering and scatter-adding them takes its hypotest from ~0.8 to ~0.65 ms. A gathered term
    costs several dense multiply-adds: the AGC workspace (3.7k terms, 25k multiply-adds) is faster
    dense, so the sparse form is used only at 16x fewer terms.
    """
    npars, nb = jac.shape
    if not small:
        pattern = _jacobian_pattern(t, npars, nb)
        shared = int(np.sum(np.sum(pattern, axis=0) ** 2))
        if 16 * shared < npars * npars * nb:
            p, q, b = [], [], []
            for j in range(nb):
                rows = np.flatnonzero(pattern[:, j])
                p.append(np.repeat(rows, rows.size))
                q.append(np.tile(rows, rows.size))
                b.append(np.full(rows.size**2, j))
            p, q, b = (np.concatenate(x) for x in (p, q, b))
            terms = jac[p, b] * d2[b] * jac[q, b]
            return jnp.zeros(npars * npars).at[p * npars + q].add(terms).reshape(npars, npars)
    return _einsum("nb,b,pb->np", jac, d2, jac, small=small)


def _jacobian_pattern(t, npars: int, nb: int) -> np.ndarray:
    """Where the Jacobian of the rates can be non-zero: ``[parameter, bin]``, from the tables."""
    pattern = np.zeros((npars, nb), dtype=bool)
    for par, mask in zip(t["histosys_par"], t["histosys_mask"], strict=True):
        pattern[par] |= mask.any(axis=0)
    for par, cmask in zip(t["normsys_par"], t["normsys_cmask"], strict=True):
        pattern[par] |= cmask.any(axis=0)[t["bin_channel"]]
    bins = np.arange(nb)
    for pars, mask in zip(t["factor_par"], t["factor_mask"], strict=True):
        active = mask.any(axis=0)
        pattern[pars[active], bins[active]] = True
    return pattern


def _mirrored(structure, prep, pars, grad, d1, nu, norm, lin_total, hs, ns, small) -> Array:
    """The gradient with the kinked interpolations evaluated on the other side of 0."""
    t = structure.tables
    if hs and structure.histosys_code == "code0":
        alpha = -pars[t["histosys_par"]][:, None, None]
        _, slope, _ = histosys_jet("code0", alpha, prep.histosys)
        change = jnp.where(t["histosys_mask"], slope, 0.0) - hs[1]
        rows = jnp.sum((norm * lin_total)[None] * change, axis=1)
        grad = _add_at(grad, t["histosys_par"], _einsum("hb,b->h", rows, d1, small=small))
    if ns and structure.normsys_code == "code1":
        alpha = -pars[t["normsys_par"]][:, None, None]
        f, f1, _ = normsys_jet("code1", alpha, prep.normsys)
        mask = t["normsys_cmask"]
        r = jnp.where(mask, f1 / jnp.where(mask, f, 1.0), 0.0)[:, :, t["bin_channel"]]
        rows = jnp.sum(nu[None] * (r - ns[1]), axis=1)
        grad = _add_at(grad, t["normsys_par"], _einsum("kb,b->k", rows, d1, small=small))
    return grad


def _weighted_second(t, w, add, norm, lin_total, nu, hs, ns, lin, small) -> Array:
    r""":math:`\sum_{sb} w_b \nabla^2 \nu_{sb}` in parameter space.

    Blocks between modifier rows are scatter-added at their parameters' indices (both orders for
    the off-diagonal blocks); a histosys and a normsys sharing a parameter meet on the diagonal.
    """
    npars = t["init"].shape[0]
    out = jnp.zeros((npars, npars))
    ph, pn, pl = t["histosys_par"], t["normsys_par"], t["factor_par"]

    def add_sym(out, rows, cols, block):
        return _add_at(_add_at(out, (rows, cols), block), (cols, rows), block)

    if hs:
        _, h1, h2 = hs
        scaled = (norm * lin_total)[None] * w
        out = _add_at(out, (ph, ph), jnp.sum(scaled * h2, axis=(1, 2)))
        if ns:
            out = add_sym(out, ph[:, None], pn[None, :], _contract(scaled * h1, ns[1], small))
        if lin:
            cross = _einsum("hsb,lsb->hlb", h1 * w, norm[None] * lin[1], small=small)
            out = add_sym(out, ph[:, None, None], pl[None], cross)
    if ns:
        _, r, s = ns
        block = _contract(nu[None] * w * r, r, small)
        block += jnp.diag(jnp.sum(nu[None] * w * (s - r**2), axis=(1, 2)))
        out = _add_at(out, (pn[:, None], pn[None, :]), block)
        if lin:
            cross = _einsum("ksb,lsb->klb", r * w, (add * norm)[None] * lin[1], small=small)
            out = add_sym(out, pn[:, None, None], pl[None], cross)
    if lin:
        pair = jnp.sum((add * norm * w)[None, None] * lin[2], axis=2)
        out = _add_at(out, (pl[:, None, :], pl[None, :, :]), pair)
    return out


_DENSE_MAX = 1 << 16  # elements of a broadcast product up to which _add_at and _einsum use one


def _add_at(out: Array, index, values: Array) -> Array:
    """``out.at[index].add(values)`` for static (NumPy) indices; ``out``'s first axis: parameters.

    For models of up to :data:`~diffana.stats.optimize.SMALL_MODEL` parameters it is a product
    with a constant one-hot matrix instead of a scatter: XLA's CPU backend then compiles the fit's
    whole Newton loop into one function (it keeps a loop with a scatter as a sequence of separately
    compiled kernels), which compiles and runs faster (:mod:`diffana._xla`).
    """
    index = index if isinstance(index, tuple) else (index,)
    if out.shape[0] > SMALL_MODEL:
        return out.at[index].add(values)
    lead = out.shape[: len(index)]
    flat = np.ravel_multi_index(np.broadcast_arrays(*index), lead).ravel()
    rows = int(np.prod(lead))
    if flat.size == 0:
        return out
    if rows * flat.size > _DENSE_MAX:
        return out.at[index].add(values)
    trail = out.shape[len(index) :]
    shape = np.broadcast_shapes(*(np.shape(i) for i in index)) + trail
    values = jnp.broadcast_to(values, shape).reshape(flat.size, int(np.prod(trail)))
    one_hot = (np.arange(rows)[:, None] == flat[None, :]).astype(np.float64)
    return out + _einsum("kj,jt->kt", one_hot, values, small=True).reshape(out.shape)


def _contract(a: Array, b: Array, small: bool) -> Array:
    """``sum_{s,b} a[i,s,b] b[j,s,b]``."""
    return _einsum("isb,jsb->ij", a, b, small=small)


def _einsum(subscripts: str, *operands: Array, small: bool) -> Array:
    """``jnp.einsum``; for a ``small`` model, a broadcast product and sum where that is small.

    Inside a loop XLA's CPU backend compiles as one function, a small matrix product is emitted as
    its own loop nest and costs more compile time than the fused elementwise form; for larger
    models (fits with LAPACK calls, compiled as separate kernels) the matrix product is faster.
    """
    inputs, output = subscripts.split("->")
    inputs = inputs.split(",")
    letters = "".join(dict.fromkeys("".join(inputs)))
    sizes = {
        k: n
        for spec, op in zip(inputs, operands, strict=True)
        for k, n in zip(spec, op.shape, strict=True)
    }
    if not small or np.prod([sizes[k] for k in letters]) > _DENSE_MAX:
        return jnp.einsum(subscripts, *operands)
    product = None
    for spec, op in zip(inputs, operands, strict=True):
        order = sorted(spec, key=letters.index)
        op = jnp.transpose(op, [spec.index(k) for k in order])
        op = op.reshape([sizes[k] if k in spec else 1 for k in letters])
        product = op if product is None else product * op
    summed = tuple(i for i, k in enumerate(letters) if k not in output)
    result = jnp.sum(product, axis=summed)
    kept = [k for k in letters if k in output]
    return jnp.transpose(result, [kept.index(k) for k in output])


def _autodiff(structure, yields, pars, data, order):
    def fun(x):
        return deviance(structure, yields, x, data)

    if order == 0:
        return (fun(pars),)
    if order == 1:
        return jax.value_and_grad(fun)(pars)
    return fun(pars), jax.grad(fun)(pars), jax.hessian(fun)(pars)
