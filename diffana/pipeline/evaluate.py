"""Phase 2, evaluate: a jit-compiled kernel per block, partial results summed in a fixed tree.

A histogram is a sum over events, so histograms and their derivatives are sums over blocks. Each
block runs one compiled kernel of the processor's ``histograms`` in the parameter vector ``theta``:

- ``"value"``: the histograms;
- ``"jvp"``: the histograms and the forward Jacobian ``d sumw / d theta`` (one linearisation, then
  one tangent per parameter: cheap when there are few parameters);
- ``"vjp"``: the histograms and ``sum_bins cotangent * d sumw / d theta`` for a given cotangent
  (one reverse pass, whatever the number of parameters).

Kernels are cached per process by processor fingerprint, kind and hard/soft, and ``jax.jit``
compiles each once per block shape, so a worker compiles a few times per run and every later step
only runs them. :func:`tree_sum` adds partial results pairwise in chunk order. In process that is
one tree over every chunk; on a cluster each worker sums its share of the chunks in one task
(:func:`evaluate_group`, a tree in chunk order) and the client adds the shares in a fixed order.
The shares are fixed after the skim (:func:`balanced_placement`), so a step gives the same numbers
whichever worker runs which share, a lost worker's share recomputed elsewhere included; the two
executors agree to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffana.errors import ConfigError
from diffana.pipeline.blocks import ChunkBlocks, slabs
from diffana.pipeline.histogram import SoftHistogram
from diffana.processors.base import ColumnBlock, Processor

__all__ = [
    "HistPart",
    "Kind",
    "Partial",
    "balanced_placement",
    "evaluate_chunk",
    "evaluate_group",
    "merge",
    "param_vector",
    "tree_sum",
]

Kind = Literal["value", "jvp", "vjp"]


class HistPart(NamedTuple):
    """A summable histogram in float64 numpy, with its Jacobian when one was asked for."""

    sumw: np.ndarray
    sumw2: np.ndarray
    edges: np.ndarray
    axis_name: str
    label: str
    jac_sumw: np.ndarray | None = None  # (..., bins, parameters)
    jac_sumw2: np.ndarray | None = None

    def __add__(self, other: HistPart) -> HistPart:  # type: ignore[override]
        jac = (
            (self.jac_sumw + other.jac_sumw, self.jac_sumw2 + other.jac_sumw2)
            if self.jac_sumw is not None and other.jac_sumw is not None
            else (None, None)
        )
        return HistPart(
            self.sumw + other.sumw,
            self.sumw2 + other.sumw2,
            self.edges,
            self.axis_name,
            self.label,
            *jac,
        )

    def to_soft(self) -> SoftHistogram:
        return SoftHistogram(
            jnp.asarray(self.sumw),
            jnp.asarray(self.sumw2),
            jnp.asarray(self.edges),
            self.axis_name,
            self.label,
        )


class Partial(NamedTuple):
    """The summed output of some blocks: histograms by output name, VJP, events evaluated."""

    hists: dict[str, HistPart]
    grad: np.ndarray | None
    events: int


def merge(a: Partial, b: Partial) -> Partial:
    """Sum two partial results (names missing on one side are taken from the other)."""
    hists = dict(a.hists)
    for name, part in b.hists.items():
        hists[name] = hists[name] + part if name in hists else part
    grad = a.grad if b.grad is None else (b.grad if a.grad is None else a.grad + b.grad)
    return Partial(hists, grad, a.events + b.events)


def tree_sum(items: Sequence[Any], combine: Callable[[Any, Any], Any]) -> Any:
    """Combine ``items`` pairwise, level by level, in their order (a deterministic tree).

    Examples:
        >>> tree_sum([1, 2, 3, 4, 5], lambda a, b: f"({a}+{b})")
        '(((1+2)+(3+4))+5)'
    """
    if not items:
        msg = "nothing to sum: no chunk produced a block"
        raise ValueError(msg)
    level = list(items)
    while len(level) > 1:
        pairs = [combine(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def balanced_placement(
    holders: Sequence[Sequence[str]], costs: Sequence[float], workers: Sequence[str]
) -> list[str]:
    """A worker for each chunk: contiguous shares of the chunks of about equal cost, one per worker.

    ``costs[i]`` is the work of chunk ``i`` (slabs to evaluate) and ``holders[i]`` the workers that
    hold its blocks now. The shares depend only on the costs and the number of workers (chunk
    ``i`` goes to the share whose cost interval holds its midpoint), so the sums of a step do not
    depend on where the skim left the blocks; each share goes to the worker that holds most of
    its cost, to move few blocks.

    Examples:
        >>> balanced_placement([["a"], ["a"], ["b"], ["b"]], [3, 2, 2, 3], ["a", "b"])
        ['a', 'a', 'b', 'b']
        >>> balanced_placement([["b"], ["b"], ["b"], ["a"]], [1, 1, 1, 1], ["a", "b"])
        ['b', 'b', 'a', 'a']
    """
    total, n = float(sum(costs)), len(workers)
    shares, done = [], 0.0
    for cost in costs:
        shares.append(min(int((done + cost / 2) * n / total), n - 1) if total > 0 else 0)
        done += cost
    held: dict[tuple[int, str], float] = {}
    for share, cost, where in zip(shares, costs, holders, strict=True):
        for worker in where:
            held[share, worker] = held.get((share, worker), 0.0) + cost
    owner: dict[int, str] = {}
    for share, worker in sorted(held, key=lambda k: (-held[k], k)):
        if share not in owner and worker in workers and worker not in owner.values():
            owner[share] = worker
    free = iter(w for w in workers if w not in owner.values())
    for share in sorted(set(shares) - set(owner)):
        owner[share] = next(free)
    return [owner[share] for share in shares]


def param_vector(processor: Processor, params: Mapping[str, float] | None) -> np.ndarray:
    """The parameters as a float64 vector in the processor's order; unknown or missing names raise."""
    names = processor.parameter_names
    values = processor.default_params() if params is None else dict(params)
    unknown = sorted(set(values) - set(names))
    missing = [n for n in names if n not in values]
    if unknown or missing:
        msg = f"parameters of {type(processor).__name__}: unknown {unknown}, missing {missing}; expected exactly {list(names)}"
        raise ConfigError(msg)
    return np.array([float(values[n]) for n in names], dtype=np.float64)


_KERNELS: dict[tuple[str, str, bool], Callable[..., Any]] = {}


def _histogram_fn(processor: Processor, hard: bool) -> Callable[..., dict[str, SoftHistogram]]:
    names = processor.parameter_names

    def fn(
        theta: jax.Array, columns: dict[str, jax.Array], hardness: Any
    ) -> dict[str, SoftHistogram]:
        params = {name: theta[i] for i, name in enumerate(names)}
        return processor.histograms(
            params, ColumnBlock(columns), hardness=math.inf if hard else hardness
        )

    return fn


def kernel(processor: Processor, fingerprint: str, kind: Kind, hard: bool) -> Callable[..., Any]:
    """The compiled kernel ``(theta, columns, hardness[, cotangent])`` of this process (cached)."""
    key = (fingerprint, kind, hard)
    if key in _KERNELS:
        return _KERNELS[key]
    fn = _histogram_fn(processor, hard)

    if kind == "value":
        compiled = jax.jit(fn)
    elif kind == "jvp":

        def jvp(theta: jax.Array, columns: dict[str, jax.Array], hardness: Any) -> Any:
            # One linearisation, then one tangent at a time: vmapping the tangents gives the
            # fills' scatter-adds [events, parameters] payloads, which XLA's CPU backend runs
            # 3-5x slower than the same scatters one parameter at a time.
            out, push = jax.linearize(lambda th: fn(th, columns, hardness), theta)
            basis = jnp.eye(theta.shape[0], dtype=theta.dtype)
            tangents = [push(t) for t in basis]
            return out, jax.tree.map(lambda *t: jnp.stack(t, axis=-1), *tangents)

        compiled = jax.jit(jvp)
    else:

        def vjp(
            theta: jax.Array, columns: dict[str, jax.Array], hardness: Any, cotangent: dict
        ) -> Any:
            out, pullback = jax.vjp(lambda th: fn(th, columns, hardness), theta)
            ct = {
                key: SoftHistogram(
                    jnp.asarray(cotangent[key][0], h.sumw.dtype),
                    jnp.asarray(cotangent[key][1], h.sumw2.dtype),
                    jnp.zeros_like(h.edges),
                    h.axis_name,
                    h.label,
                )
                for key, h in out.items()
            }
            return out, pullback(ct)[0]

        compiled = jax.jit(vjp)
    _KERNELS[key] = compiled
    return compiled


_SHAPES: dict[tuple[Any, ...], dict[str, Any]] = {}


def _output_shapes(
    processor: Processor, fingerprint: str, hard: bool, theta: Any, columns: dict, hardness: Any
) -> dict[str, Any]:
    key = (fingerprint, hard, tuple((k, v.shape, str(v.dtype)) for k, v in columns.items()))
    if key not in _SHAPES:
        _SHAPES[key] = jax.eval_shape(_histogram_fn(processor, hard), theta, columns, hardness)
    return _SHAPES[key]


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def evaluate_chunk(
    blocks: ChunkBlocks,
    processor: Processor,
    fingerprint: str,
    theta: np.ndarray,
    hardness: float,
    kind: Kind,
    cotangent: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Partial:
    """Run the kernel over every block of one chunk and name its histograms (on a worker).

    ``blocks`` may also be a reference to blocks on disk (anything with a ``load()`` method).
    """
    if not isinstance(blocks, ChunkBlocks):
        blocks = blocks.load()
    hard = math.isinf(hardness)
    run = kernel(processor, fingerprint, kind, hard)
    theta_j = jnp.asarray(theta, dtype=jnp.float64)
    h_arg = None if hard else jnp.asarray(hardness, dtype=jnp.float64)
    hists: dict[str, HistPart] = {}
    grad = np.zeros(theta.shape[0]) if kind == "vjp" else None
    for systematic, block in blocks.blocks.items():
        names: dict[str, str | None] = {}
        sums: dict[str, list[np.ndarray]] = {}
        meta: dict[str, Any] = {}
        for columns in slabs(block, blocks.slab):
            if kind == "vjp":
                shapes = _output_shapes(processor, fingerprint, hard, theta_j, columns, h_arg)
                names = names or {
                    k: processor.output_name(k, blocks.chunk, systematic) for k in shapes
                }
                ct = {}
                for key, shape in shapes.items():
                    zero = np.zeros(shape.sumw.shape)
                    given = (
                        cotangent.get(names[key]) if cotangent and names[key] is not None else None
                    )
                    ct[key] = given if given is not None else (zero, zero)
                out, g = run(theta_j, columns, h_arg, ct)
                grad = grad + _f64(g)
                jac: dict[str, Any] = {}
            elif kind == "jvp":
                out, jac = run(theta_j, columns, h_arg)
            else:
                out, jac = run(theta_j, columns, h_arg), {}
            for key, h in out.items():
                arrays = [_f64(h.sumw), _f64(h.sumw2)]
                if kind == "jvp":
                    arrays += [_f64(jac[key].sumw), _f64(jac[key].sumw2)]
                if key in sums:
                    sums[key] = [a + b for a, b in zip(sums[key], arrays, strict=True)]
                else:
                    sums[key], meta[key] = arrays, (np.asarray(h.edges), h.axis_name, h.label)
        for key, arrays in sums.items():
            name = (
                names[key] if key in names else processor.output_name(key, blocks.chunk, systematic)
            )
            if name is None:
                continue
            jacs = (arrays[2], arrays[3]) if kind == "jvp" else (None, None)
            part = HistPart(arrays[0], arrays[1], *meta[key], *jacs)
            hists[name] = hists[name] + part if name in hists else part
    return Partial(hists, grad, sum(blocks.kept.values()))


def evaluate_group(items: Sequence[Any], processor: Processor, **kwargs: Any) -> Partial:
    """The sum of :func:`evaluate_chunk` over several chunks, a tree in their order: one task per
    worker and step. An item that is already a :class:`Partial` (a chunk evaluated earlier in the
    same pass) takes its place in the tree as it is."""
    parts = [
        item if isinstance(item, Partial) else evaluate_chunk(item, processor, **kwargs)
        for item in items
    ]
    return tree_sum(parts, merge)
