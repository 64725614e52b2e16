"""The optimisation loop on analytic objectives: steps, scales, bounds, schedules, checkpoints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from diffana.config import EarlyStopping, HardnessSchedule, OptimizerSpec
from diffana.errors import ConfigError, FitError
from diffana.pipeline.loop import hardness_at, optimise
from diffana.processors.base import Parameter

PARAMS = [
    Parameter("x", 0.0, (-20.0, 20.0), 2.0),
    Parameter("y", 1.0, (-5.0, 5.0), 0.5),
]


def quadratic(params, hardness):
    """(x - 3)^2 + (y + 10)^2: the optimum y = -10 lies outside y's bounds [-5, 5]."""
    x, y = params["x"], params["y"]
    return (x - 3.0) ** 2 + (y + 10.0) ** 2, {"x": 2 * (x - 3.0), "y": 2 * (y + 10.0)}


def annealed(params, hardness):
    """A loss whose shape depends on the hardness (so the schedule matters for resuming)."""
    x, y = params["x"], params["y"]
    a = 1.0 + 1.0 / hardness
    return a * (x - 1.0) ** 2 + math.cos(y) + y**2 / 10, {
        "x": 2 * a * (x - 1.0),
        "y": -math.sin(y) + y / 5,
    }


def test_adam_reaches_the_optimum_projected_into_the_bounds():
    result = optimise(
        quadratic,
        PARAMS,
        OptimizerSpec(learning_rate=0.1, steps=300, early_stopping=None),
    )
    assert result.params["x"] == pytest.approx(3.0, abs=0.02)
    assert result.params["y"] == -5.0  # clipped onto the bound, exactly
    assert result.stopped == "steps"
    assert len(result.history) == 300
    assert all(-5.0 <= r["params"]["y"] <= 5.0 for r in result.history)


def test_one_sgd_step_moves_by_learning_rate_times_scale_squared_times_gradient():
    """u = theta / scale, so d loss / d u = scale * g and theta moves by -lr * scale^2 * g."""
    result = optimise(quadratic, PARAMS, OptimizerSpec(name="sgd", learning_rate=0.01, steps=2))
    first, second = (r["params"] for r in result.history)
    assert second["x"] == pytest.approx(0.0 - 0.01 * 2.0**2 * (2 * (0.0 - 3.0)), rel=1e-12)
    assert second["y"] == pytest.approx(1.0 - 0.01 * 0.5**2 * (2 * (1.0 + 10.0)), rel=1e-12)
    assert first == {"x": 0.0, "y": 1.0}
    assert result.history[0]["grad"] == {"x": -6.0, "y": 22.0}


def test_frozen_parameters_stay_at_their_init():
    result = optimise(quadratic, PARAMS, OptimizerSpec(learning_rate=0.3, steps=20), frozen=["y"])
    assert all(r["params"]["y"] == 1.0 for r in result.history)
    assert result.params["x"] != 0.0
    with pytest.raises(ConfigError, match=r"frozen parameters \['z'\]"):
        optimise(quadratic, PARAMS, OptimizerSpec(steps=2), frozen=["z"])


def test_hardness_schedules():
    assert [hardness_at(HardnessSchedule(start=3.0), k, 5) for k in range(5)] == [3.0] * 5
    lin = HardnessSchedule(schedule="linear", start=1.0, end=5.0)
    assert [hardness_at(lin, k, 5) for k in range(5)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    geo = HardnessSchedule(schedule="geometric", start=2.0, end=32.0)
    np.testing.assert_allclose([hardness_at(geo, k, 5) for k in range(5)], [2, 4, 8, 16, 32])
    seen = []
    optimise(
        lambda p, h: seen.append(h) or quadratic(p, h),
        PARAMS,
        OptimizerSpec(steps=5, hardness=geo, early_stopping=None),
    )
    np.testing.assert_allclose(seen, [2, 4, 8, 16, 32])


def test_early_stopping_after_patience_steps_without_improvement():
    flat = lambda p, h: (1.0, {"x": 1.0, "y": 1.0})  # noqa: E731
    result = optimise(
        flat,
        PARAMS,
        OptimizerSpec(steps=50, early_stopping=EarlyStopping(patience=4, min_delta=0.0)),
    )
    assert result.stopped == "early_stopping"
    assert len(result.history) == 5  # the first step sets the best, four more do not improve
    assert result.best_step == 0


def test_no_early_stopping_while_the_hardness_grows():
    # the soft objective of sharper cuts is larger, though the parameters do not move
    rising = lambda p, h: (h, {"x": 0.0, "y": 0.0})  # noqa: E731
    geo = HardnessSchedule(schedule="geometric", start=2.0, end=32.0)
    spec = OptimizerSpec(steps=12, hardness=geo, early_stopping=EarlyStopping(patience=2))
    result = optimise(rising, PARAMS, spec)
    assert result.stopped == "steps"
    assert len(result.history) == 12
    flat = OptimizerSpec(steps=12, early_stopping=EarlyStopping(patience=2))
    assert optimise(rising, PARAMS, flat).stopped == "early_stopping"


def test_select_best_returns_the_best_evaluated_point():
    result = optimise(
        quadratic,
        PARAMS,
        OptimizerSpec(learning_rate=3.0, steps=12, select="best", early_stopping=None),
    )
    losses = [r["loss"] for r in result.history]
    assert result.params == result.history[int(np.argmin(losses))]["params"]


def test_hard_value_every_k_steps():
    calls = []
    result = optimise(
        quadratic,
        PARAMS,
        OptimizerSpec(steps=7, hard_every=3, early_stopping=None),
        hard_value=lambda p: calls.append(p) or 42.0,
    )
    assert [r["step"] for r in result.history if "hard_loss" in r] == [0, 3, 6]
    assert len(calls) == 3


class _Killed(Exception):
    pass


def test_resume_continues_exactly(tmp_path):
    """N steps straight == N/2 steps, a crash, then --resume for the rest: identical, bit for bit."""
    spec = OptimizerSpec(
        learning_rate=0.4,
        steps=12,
        hardness=HardnessSchedule(schedule="geometric", start=1.0, end=10.0),
        early_stopping=None,
    )
    straight = optimise(annealed, PARAMS, spec, checkpoint=tmp_path / "a.json", fingerprint="f")

    def crashing(params, hardness, calls=[0]):  # noqa: B006
        calls[0] += 1
        if calls[0] > 6:
            raise _Killed
        return annealed(params, hardness)

    path = tmp_path / "b.json"
    with pytest.raises(_Killed):
        optimise(crashing, PARAMS, spec, checkpoint=path, fingerprint="f")
    saved = json.loads(path.read_text())  # plain JSON, never a pickle
    assert saved["step"] == 6
    assert len(saved["history"]) == 6
    assert {"u", "opt_state", "best_loss"} <= set(saved)
    resumed = optimise(annealed, PARAMS, spec, checkpoint=path, resume=True, fingerprint="f")
    assert resumed.params == straight.params
    assert resumed.history == straight.history
    # without --resume the checkpoint is ignored and the run starts afresh
    fresh = optimise(annealed, PARAMS, spec, checkpoint=path, fingerprint="f")
    assert fresh.history == straight.history


def test_resume_more_steps_continues_where_it_stopped(tmp_path):
    spec = OptimizerSpec(learning_rate=0.2, steps=10, early_stopping=None)
    straight = optimise(annealed, PARAMS, spec)
    path = tmp_path / "c.json"
    optimise(annealed, PARAMS, spec.model_copy(update={"steps": 4}), checkpoint=path)
    resumed = optimise(annealed, PARAMS, spec, checkpoint=path, resume=True)
    assert resumed.history == straight.history


def test_resume_refuses_another_problems_checkpoint(tmp_path):
    path = tmp_path / "d.json"
    optimise(quadratic, PARAMS, OptimizerSpec(steps=2), checkpoint=path, fingerprint="one")
    with pytest.raises(ConfigError, match="different workflow"):
        optimise(
            quadratic,
            PARAMS,
            OptimizerSpec(steps=4),
            checkpoint=path,
            resume=True,
            fingerprint="two",
        )
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the checkpoint"):
        optimise(quadratic, PARAMS, OptimizerSpec(steps=4), checkpoint=path, resume=True)


def test_a_non_finite_objective_stops_with_the_step_and_point_named(tmp_path):
    def broken(params, hardness):
        loss, grad = quadratic(params, hardness)
        return (math.nan if params["x"] > 0.5 else loss), grad

    path = tmp_path / "e.json"
    with pytest.raises(FitError, match=r"step 1: the objective or its gradient is not finite"):
        optimise(broken, PARAMS, OptimizerSpec(learning_rate=0.5, steps=5), checkpoint=path)
    assert json.loads(path.read_text())["step"] == 1  # the last good step is kept
