from __future__ import annotations

import awkward as ak
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import uproot

from diffana.errors import ConfigError
from diffana.pipeline import (
    HARD,
    cut,
    flatten,
    object_sum,
    pad,
    per_event_sum,
    scalar_sum,
    segment_ids,
)

RNG = np.random.default_rng(5)


def _jagged(events=300, most=9):
    counts = RNG.integers(0, most + 1, events)
    return ak.unflatten(RNG.exponential(40.0, counts.sum()) + 15.0, counts)


def test_pad_matches_awkward_slot_by_slot():
    array = _jagged()
    values, mask = pad(array, 9, fill=-1.0)
    assert values.shape == mask.shape == (300, 9)
    np.testing.assert_array_equal(mask.sum(axis=1), ak.num(array))
    np.testing.assert_array_equal(values[mask], ak.flatten(array).to_numpy())
    assert np.all(values[~mask] == -1.0)
    np.testing.assert_array_equal(object_sum(np.where(mask, values, 0.0)), ak.sum(array, axis=1))


def test_pad_refuses_to_drop_objects_unless_asked():
    array = _jagged()
    with pytest.raises(ConfigError, match=r"Jet_pt has events with up to 9 objects.*clip=True"):
        pad(array, 4, name="Jet_pt")
    values, mask = pad(array, 4, clip=True, dtype=np.float32)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(
        values[mask], ak.flatten(array[:, :4]).to_numpy().astype(np.float32)
    )


def test_pad_passes_typetracers_through():
    array = ak.to_backend(_jagged(), "typetracer")
    values, mask = pad(array, 6, clip=True)
    assert ak.backend(values) == ak.backend(mask) == "typetracer"
    assert str(values.type.content) == "6 * float64"


def test_flat_segment_sums_match_awkward_and_padded_sums():
    array = _jagged()
    content, counts = flatten(array)
    ids = segment_ids(counts)
    threshold = 30.0
    weights = cut(content, threshold, width=5.0, hardness=2.0)
    got = per_event_sum(jnp.asarray(content) * weights, jnp.asarray(ids), len(counts))
    soft_per_object = ak.unflatten(np.asarray(weights), counts)
    np.testing.assert_allclose(got, ak.sum(array * soft_per_object, axis=1), rtol=1e-13)
    values, mask = pad(array, 9)
    padded = scalar_sum(values, cut(values, threshold, width=5.0, hardness=2.0, mask=mask))
    np.testing.assert_allclose(got, padded, rtol=1e-13)
    hard = per_event_sum(content * (content > threshold), ids, len(counts))
    np.testing.assert_array_equal(hard, ak.sum(array[array > threshold], axis=1))


def test_flat_sums_have_gradients():
    content, counts = flatten(_jagged(events=20))
    ids = segment_ids(counts)

    def total(threshold):
        w = cut(content, threshold, width=5.0, hardness=1.0)
        return per_event_sum(content * w, ids, len(counts)).sum()

    grad = jax.grad(total)(30.0)
    step = 1e-5
    fd = (total(30.0 + step) - total(30.0 - step)) / (2 * step)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_real_nanoaod_jets_pad_and_flatten_like_awkward(shared):
    path = shared / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    with uproot.open(path) as f:
        jets = f["Events"].arrays(["Jet_pt", "Jet_eta", "Jet_jetId"])
    most = int(ak.max(ak.num(jets.Jet_pt)))
    pt, mask = pad(jets.Jet_pt, most, name="Jet_pt")
    eta, _ = pad(jets.Jet_eta, most, name="Jet_eta")
    jet_id, _ = pad(jets.Jet_jetId, most, name="Jet_jetId")
    assert pt.dtype == np.float32
    selected = (jets.Jet_pt > 30) & (abs(jets.Jet_eta) < 2.4) & (jets.Jet_jetId == 6)
    weights = cut(pt, 30.0, width=5.0, hardness=HARD, mask=mask)
    weights = weights * cut(np.abs(eta), 2.4, width=0.1, hardness=HARD, op="<")
    weights = weights * (jet_id == 6)
    np.testing.assert_array_equal(object_sum(weights), ak.sum(selected, axis=1))
    ht = scalar_sum(pt.astype(np.float64), weights)
    np.testing.assert_array_equal(ht, ak.sum(jets.Jet_pt[selected], axis=1).to_numpy())
    content, counts = flatten(jets.Jet_pt, dtype=np.float64)
    flat_ht = per_event_sum(content * ak.flatten(selected).to_numpy(), segment_ids(counts), 200)
    np.testing.assert_array_equal(flat_ht, ht)
