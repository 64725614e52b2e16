"""Phase-2 pieces: deterministic tree sums, partial results, parameter vectors."""

from __future__ import annotations

import numpy as np
import pytest

from diffana.errors import ConfigError
from diffana.pipeline.evaluate import (
    HistPart,
    Partial,
    balanced_placement,
    merge,
    param_vector,
    tree_sum,
)


def _part(values, jac=None):
    v = np.asarray(values, dtype=float)
    return HistPart(
        v, v**2, np.arange(len(v) - 1, dtype=float), "x", "", jac, None if jac is None else 2 * jac
    )


def test_tree_sum_pairs_in_order_and_equals_the_plain_sum():
    rng = np.random.default_rng(0)
    values = list(rng.normal(size=37) * 10.0 ** rng.integers(-8, 8, size=37))
    assert tree_sum(values, lambda a, b: a + b) == pytest.approx(sum(values), rel=1e-12)
    # the same items always combine in the same tree, whatever executes the additions
    shape = tree_sum([str(i) for i in range(6)], lambda a, b: f"({a} {b})")
    assert shape == "(((0 1) (2 3)) (4 5))"
    with pytest.raises(ValueError, match="no chunk produced a block"):
        tree_sum([], lambda a, b: a)


def test_merge_adds_by_name_and_keeps_names_seen_once():
    a = Partial({"x": _part([1, 2, 3]), "only_a": _part([5, 5, 5])}, np.array([1.0, 2.0]), 10)
    b = Partial({"x": _part([1, 1, 1]), "only_b": _part([7, 7, 7])}, None, 5)
    m = merge(a, b)
    assert sorted(m.hists) == ["only_a", "only_b", "x"]
    np.testing.assert_array_equal(m.hists["x"].sumw, [2, 3, 4])
    np.testing.assert_array_equal(m.hists["x"].sumw2, [2, 5, 10])
    np.testing.assert_array_equal(m.grad, [1, 2])
    assert m.events == 15


def test_histpart_sums_jacobians():
    ja, jb = np.ones((3, 2)), np.full((3, 2), 2.0)
    s = _part([1, 2, 3], ja) + _part([0, 0, 1], jb)
    np.testing.assert_array_equal(s.jac_sumw, 3 * np.ones((3, 2)))
    np.testing.assert_array_equal(s.jac_sumw2, 6 * np.ones((3, 2)))
    assert (_part([1, 2, 3], ja) + _part([1, 2, 3])).jac_sumw is None


def test_param_vector_in_processor_order(toy):
    proc = toy.Processor()
    np.testing.assert_array_equal(param_vector(proc, None), [30.0, 0.5])
    np.testing.assert_array_equal(param_vector(proc, {"btag": 0.7, "jet_pt": 25}), [25.0, 0.7])
    with pytest.raises(
        ConfigError, match=r"unknown \['eta'\], missing \[\].*expected exactly \['jet_pt', 'btag'\]"
    ):
        param_vector(proc, {"btag": 0.7, "jet_pt": 25, "eta": 1.0})


def test_balanced_placement_gives_contiguous_equal_shares_whoever_holds_the_blocks():
    rng = np.random.default_rng(1)
    costs = list(rng.integers(1, 9, size=60))
    workers = ["w0", "w1", "w2"]
    plans = [
        balanced_placement([[str(w)] for w in rng.choice(workers, 60)], costs, workers)
        for _ in range(5)
    ]
    # the same chunks go together whatever the holders: only which worker gets a share changes
    shares = [[plan.index(w) for w in plan] for plan in plans]
    groups = [
        [sorted(i for i, w in enumerate(plan) if w == x) for x in dict.fromkeys(plan)]
        for plan in plans
    ]
    assert all(g == groups[0] for g in groups)
    assert all(s == sorted(s) for s in shares)  # contiguous runs of the chunk order
    loads = [sum(costs[i] for i in group) for group in groups[0]]
    assert len(loads) == 3
    assert max(loads) - min(loads) <= max(costs)
    # a share goes to the worker that holds most of it
    held = ["w1"] * 20 + ["w2"] * 20 + ["w0"] * 20
    assert balanced_placement([[h] for h in held], [1] * 60, workers) == held
