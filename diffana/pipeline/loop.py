"""The optimisation loop: optax on the cut parameters, checkpointed after every step.

The optimiser works on the parameters in units of their scales, ``u = theta / scale``, so one
learning rate fits a pT cut in GeV and a b-tag score alike; after every update ``u`` is projected
back into the bounds (``clip``). Each step evaluates the soft objective and its gradient at the
step's hardness (:func:`hardness_at`), records it, checks early stopping (steps without
improvement count only while the hardness stays the same: as the cuts sharpen, the soft objective
rises towards the hard one without any change of the parameters), updates, and writes a
checkpoint: a JSON file with the parameters, the optimiser state as plain arrays (its pytree
leaves), the early-stopping counters and the history. ``resume=True`` reads it and continues as if
never interrupted: the same workflow gives the same parameters, bit for bit.

Examples:
    Minimise ``(x - 3)^2`` from 0 by gradient descent in units of ``scale = 2`` (one step reaches
    the minimum; early stopping ends the loop after 8 steps without improvement):

    >>> from diffana.config import OptimizerSpec
    >>> from diffana.processors.base import Parameter
    >>> vg = lambda p, hardness: ((p["x"] - 3.0) ** 2, {"x": 2 * (p["x"] - 3.0)})
    >>> result = optimise(vg, [Parameter("x", 0.0, (-10.0, 10.0), 2.0)],
    ...                   OptimizerSpec(name="sgd", learning_rate=0.125, steps=40))
    >>> round(result.params["x"], 6), result.stopped, len(result.history)
    (3.0, 'early_stopping', 10)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffana.errors import ConfigError, FitError
from diffana.processors.base import Parameter

if TYPE_CHECKING:  # the workflow's models; the loop reads only their attributes
    from diffana.config import HardnessSchedule, OptimizerSpec

__all__ = [
    "CHECKPOINT_VERSION",
    "LoopResult",
    "LoopState",
    "fingerprint_of",
    "hardness_at",
    "make_optimizer",
    "optimise",
]

CHECKPOINT_VERSION = 1

ValueAndGrad = Callable[[dict[str, float], float], tuple[float, Mapping[str, float]]]


class LoopState(NamedTuple):
    """Everything the loop needs to continue: saved in the checkpoint after every step."""

    step: int  # evaluations done
    u: np.ndarray  # parameters in units of their scales, after the last update
    opt_state: Any
    best_loss: float
    best_step: int
    stale: int  # evaluations since the last improvement
    stopped: str | None  # "early_stopping" once it triggered


class LoopResult(NamedTuple):
    """The outcome: the chosen parameters, the history of every step, why the loop stopped."""

    params: dict[str, float]
    history: list[dict[str, Any]]
    stopped: str  # "steps" or "early_stopping"
    best_step: int


def hardness_at(schedule: HardnessSchedule, step: int, steps: int) -> float:
    """The hardness of ``step`` (0-based) of ``steps``.

    Examples:
        >>> from diffana.config import HardnessSchedule
        >>> s = HardnessSchedule(schedule="geometric", start=1.0, end=4.0)
        >>> [hardness_at(s, k, 3) for k in range(3)]
        [1.0, 2.0, 4.0]
    """
    if schedule.schedule == "constant" or steps <= 1:
        return float(schedule.start)
    end = float(schedule.end)  # type: ignore[arg-type]  # checked by the config
    frac = min(step, steps - 1) / (steps - 1)
    if schedule.schedule == "linear":
        return float(schedule.start + frac * (end - schedule.start))
    return float(schedule.start * (end / schedule.start) ** frac)


def make_optimizer(spec: OptimizerSpec) -> optax.GradientTransformation:
    """The optax transformation named in the workflow (its learning rate in units of scales)."""
    return getattr(optax, spec.name)(spec.learning_rate)


# ---------------------------------------------------------------------------- checkpoint
def _encode(leaf: Any) -> dict[str, Any]:
    array = np.asarray(leaf)
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": array.ravel().tolist()}


def _decode(item: Mapping[str, Any]) -> np.ndarray:
    return np.asarray(item["data"], dtype=item["dtype"]).reshape(item["shape"])


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _save(path: Path, state: LoopState, history: list[dict[str, Any]], fingerprint: str) -> None:
    leaves = jax.tree_util.tree_leaves(state.opt_state)
    doc = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": fingerprint,
        "step": state.step,
        "u": _encode(state.u),
        "opt_state": [_encode(leaf) for leaf in leaves],
        "best_loss": _finite_or_none(state.best_loss),
        "best_step": state.best_step,
        "stale": state.stale,
        "stopped": state.stopped,
        "history": history,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)  # never a half-written checkpoint


def _load(path: Path, template: Any, fingerprint: str) -> tuple[LoopState, list[dict[str, Any]]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        msg = f"cannot read the checkpoint {path}: {exc}; remove it to start afresh"
        raise ConfigError(msg) from None
    if doc.get("version") != CHECKPOINT_VERSION or doc.get("fingerprint") != fingerprint:
        msg = (
            f"the checkpoint {path} was written by a different workflow, processor or dataset "
            "(fingerprint differs); run without --resume, or remove it, to start afresh"
        )
        raise ConfigError(msg)
    treedef = jax.tree_util.tree_structure(template)
    leaves = [jnp.asarray(_decode(item)) for item in doc["opt_state"]]
    if len(leaves) != treedef.num_leaves:
        msg = f"the checkpoint {path} has an optimiser state of another shape; remove it"
        raise ConfigError(msg)
    best = doc["best_loss"]
    state = LoopState(
        step=int(doc["step"]),
        u=_decode(doc["u"]),
        opt_state=jax.tree_util.tree_unflatten(treedef, leaves),
        best_loss=math.inf if best is None else float(best),
        best_step=int(doc["best_step"]),
        stale=int(doc["stale"]),
        stopped=doc["stopped"],
    )
    return state, list(doc["history"])


def fingerprint_of(*parts: Any) -> str:
    """A short hash of JSON-able parts (what a checkpoint must match to be resumed).

    Examples:
        >>> fingerprint_of({"a": 1}) == fingerprint_of({"a": 1}), len(fingerprint_of(2))
        (True, 16)
    """
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- the loop
def optimise(
    value_and_grad: ValueAndGrad,
    parameters: Sequence[Parameter],
    spec: OptimizerSpec,
    *,
    frozen: Sequence[str] = (),
    checkpoint: str | Path | None = None,
    resume: bool = False,
    fingerprint: str = "",
    hard_value: Callable[[dict[str, float]], float] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> LoopResult:
    """Minimise ``value_and_grad(params, hardness) -> (loss, {name: d loss / d param})``.

    Args:
        value_and_grad: the soft loss and its gradient in physical units (e.g. GeV).
        parameters: the parameters (``init``, ``bounds``, ``scale``) in the processor's order.
        spec: the optimiser, learning rate, steps, hardness schedule, early stopping, ...
        frozen: names of parameters held at their ``init``.
        checkpoint: JSON file written after every step (``None``: no checkpoint).
        resume: continue from ``checkpoint`` if it exists (its ``fingerprint`` must match).
        fingerprint: identifies the problem (workflow, processor, dataset) in the checkpoint.
        hard_value: the hard loss of some parameters; called every ``spec.hard_every`` steps.
        on_step: called with each step's history record (for progress output).

    Returns:
        The parameters of the last evaluated step (or of the best one, ``select: best``), the
        history (one record per step: ``step``, ``hardness``, ``loss``, ``params``, ``grad`` and
        ``hard_loss`` when evaluated) and why the loop stopped.

    Raises:
        FitError: if the loss or its gradient is not finite (the checkpoint keeps the last good
            step).
        ConfigError: if the checkpoint to resume from does not match.
    """
    names = [p.name for p in parameters]
    unknown = sorted(set(frozen) - set(names))
    if unknown:
        msg = f"frozen parameters {unknown} are not parameters; choose among {names}"
        raise ConfigError(msg)
    scale = np.array([p.scale for p in parameters], dtype=np.float64)
    low = np.array([p.bounds[0] for p in parameters], dtype=np.float64) / scale
    high = np.array([p.bounds[1] for p in parameters], dtype=np.float64) / scale
    free = np.array([n not in frozen for n in names])
    optimizer = make_optimizer(spec)
    u0 = np.array([p.init for p in parameters], dtype=np.float64) / scale
    state = LoopState(0, u0, optimizer.init(jnp.asarray(u0)), math.inf, -1, 0, None)
    history: list[dict[str, Any]] = []
    path = None if checkpoint is None else Path(checkpoint)
    if resume and path is not None and path.is_file():
        state, history = _load(path, state.opt_state, fingerprint)

    def physical(u: np.ndarray) -> dict[str, float]:
        return {n: float(x) for n, x in zip(names, u * scale, strict=True)}

    while state.step < spec.steps and state.stopped is None:
        k = state.step
        params = physical(state.u)
        hardness = hardness_at(spec.hardness, k, spec.steps)
        loss, grad = value_and_grad(params, hardness)
        loss = float(loss)
        g = np.array([float(grad[n]) for n in names], dtype=np.float64)
        if not (math.isfinite(loss) and np.all(np.isfinite(g))):
            msg = (
                f"step {k}: the objective or its gradient is not finite (loss {loss}, gradient "
                f"{dict(zip(names, g.tolist(), strict=True))}) at {params}; narrow the bounds "
                "or lower the learning rate"
            )
            raise FitError(msg)
        record: dict[str, Any] = {
            "step": k,
            "hardness": hardness,
            "loss": loss,
            "params": params,
            "grad": dict(zip(names, g.tolist(), strict=True)),
        }
        if hard_value is not None and spec.hard_every and k % spec.hard_every == 0:
            record["hard_loss"] = float(hard_value(params))
        best_loss, best_step, stale, stopped = state.best_loss, state.best_step, state.stale, None
        if loss < best_loss - (spec.early_stopping.min_delta if spec.early_stopping else 0.0) * abs(
            best_loss if math.isfinite(best_loss) else 0.0
        ):
            best_loss, best_step, stale = loss, k, 0
        elif history and hardness != history[-1]["hardness"]:
            stale = 0  # a sharper objective is another function: only equal hardness compares
        else:
            stale += 1
        if spec.early_stopping is not None and stale >= spec.early_stopping.patience:
            stopped = "early_stopping"
        updates, opt_state = optimizer.update(
            jnp.asarray(np.where(free, g * scale, 0.0)), state.opt_state, jnp.asarray(state.u)
        )
        u = np.clip(np.asarray(optax.apply_updates(jnp.asarray(state.u), updates)), low, high)
        u = np.where(free, u, u0)
        state = LoopState(k + 1, u, opt_state, best_loss, best_step, stale, stopped)
        history.append(record)
        if path is not None:
            _save(path, state, history, fingerprint)
        if on_step is not None:
            on_step(record)
    if not history:
        msg = "the loop ran no step; give optimizer.steps >= 1"
        raise ConfigError(msg)
    chosen = history[state.best_step] if spec.select == "best" else history[-1]
    return LoopResult(dict(chosen["params"]), history, state.stopped or "steps", state.best_step)
