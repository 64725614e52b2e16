"""The published ATLAS sbottom likelihood (ins1748602): five signal points against pyhf's numbers.

The background-only workspaces and signal patches are read from the HEPData tarball with
``tarfile``; patches are applied with ``jsonpatch``. Signal points of one region share a model
structure, so their hypotests run as one ``vmap`` over the stacked yields.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jsonpatch
import numpy as np

from diffana.stats import Workspace
from diffana.stats.asymptotics import hypotest


def test_sbottom_signal_points_match_reference_tight(reference_cases, sbottom):
    reference = reference_cases["additional_references"][3]
    assert reference["model_settings"]["modifier_settings"] == {
        "normsys": {"interpcode": "code4"},
        "histosys": {"interpcode": "code4p"},
    }  # pyhf's defaults
    by_region: dict[str, list] = {}
    for key in reference["reference_tight"]:
        region = key.split("/")[0]
        spec = jsonpatch.apply_patch(sbottom[f"{region}/BkgOnly.json"], sbottom[f"{key}.json"])
        workspace = Workspace(spec)
        model = workspace.model()
        by_region.setdefault(region, []).append((key, model, workspace.data(model)))
    for points in by_region.values():
        structure = points[0][1].structure
        assert all(model.structure == structure for _, model, _ in points)
        yields = jax.tree.map(lambda *x: jnp.stack(x), *(model.yields for _, model, _ in points))
        data = jnp.asarray([d for _, _, d in points])
        results = jax.vmap(lambda y, d, s=structure: hypotest(s, y, d, 1.0))(yields, data)
        assert np.all(np.asarray(results.status) == 0)
        for index, (key, _, _) in enumerate(points):
            tight = reference["reference_tight"][key]
            np.testing.assert_allclose(float(results.cls_obs[index]), tight["CLs_obs"], rtol=1e-5)
            np.testing.assert_allclose(np.asarray(results.cls_exp[index]), tight["CLs_exp"], 1e-5)
