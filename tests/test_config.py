"""The workflow file: the shipped workflows validate, the AGC model is the AGC's, bad input is named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from diffana.config import Workflow, load_workflow, parse_workflow
from diffana.errors import ConfigError
from diffana.pipeline.cluster import JobqueueConfig, build_cluster
from diffana.processors.registry import get_processor
from diffana.session import resolve_parameters
from diffana.stats.build_config import parse_config

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
DEFAULT = WORKFLOWS / "agc_ttbar.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(DEFAULT.read_text())


def test_default_workflow_model_is_the_agc_cabinetry_config(shared):
    """The model section, in our format, means exactly the AGC's cabinetry_config.yml."""
    workflow = load_workflow(DEFAULT)
    ours = parse_config(workflow.model.to_cabinetry())
    agc = parse_config(
        yaml.safe_load((shared / "oracles/agc-reference/cabinetry_config.yml").read_text())
    )
    for field in ("measurement", "poi", "regions", "samples", "normfactors", "systematics"):
        assert getattr(ours, field) == getattr(agc, field), field
    assert ours.input_path == agc.input_path.split(":")[-1]
    assert workflow.objective.kind == "sigma_poi"
    assert workflow.optimizer.name == "adam"
    assert workflow.cluster.kind == "local"
    assert workflow.cluster.n_workers == 2


@pytest.mark.parametrize(
    ("kind", "lines"),
    [
        ("slurm", ["#SBATCH -p short", "#SBATCH --exclusive", "#SBATCH --mem="]),
        ("htcondor", ["+MaxRuntime = 7200", "RequestDisk"]),
        ("pbs", ["#PBS -q workq", "#PBS -l place=excl"]),
    ],
)
def test_cluster_workflows_validate_and_make_job_scripts(kind, lines):
    workflow = load_workflow(WORKFLOWS / f"cluster_{kind}.yaml")
    assert isinstance(workflow.cluster, JobqueueConfig)
    assert workflow.cluster.kind == kind
    # everything else comes from the default workflow (extends: agc_ttbar.yaml)
    assert workflow.model == load_workflow(DEFAULT).model
    assert workflow.dataset.events_per_sample > load_workflow(DEFAULT).dataset.events_per_sample
    extra = {
        **workflow.cluster.extra,
        "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"},
    }
    config = workflow.cluster.model_copy(update={"jobs": 0, "extra": extra})
    cluster = build_cluster(config)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in [*lines, "source /path/to/venv/bin/activate", f"--nworkers {config.cores} "]:
        assert line in script, (line, script)


def _error(data: dict, source: str = "w.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        parse_workflow(data, source)
    assert isinstance(info.value, ValueError)
    return str(info.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d.update(optimiser={}),
            "w.yaml: optimiser: unknown key (did you mean 'optimizer'?)",
        ),
        (
            lambda d: d["optimizer"].update(learning_rat=0.1),
            "optimizer.learning_rat: unknown key (did you mean 'learning_rate'?)",
        ),
        (
            lambda d: d["optimizer"].update(steps="many"),
            "optimizer.steps: Input should be a valid integer",
        ),
        (lambda d: d["optimizer"].update(steps=0), "optimizer.steps: Input should be greater than"),
        (
            lambda d: d["optimizer"].update(polish={"points": 1}),
            "optimizer.polish.points: Input should be greater than or equal to 2",
        ),
        (
            lambda d: d["optimizer"].update(polish={"point": 5}),
            "optimizer.polish.point: unknown key (did you mean 'points'?)",
        ),
        (
            lambda d: d["dataset"].update(events_per_sample=-5),
            "dataset.events_per_sample: Input should be greater than 0",
        ),
        (
            lambda d: d.update(dataset={"kind": "fileset", "path": "no/such/fileset.json"}),
            "dataset.path: Path does not point to a file (got 'no/such/fileset.json'); give the path",
        ),
        (
            lambda d: d.update(dataset={"folder": "x"}),
            "dataset: Unable to extract tag using discriminator 'kind'",
        ),
        (
            lambda d: d["engine"].update(block_size=0),
            "engine.block_size: Input should be greater than 0",
        ),
        (
            lambda d: d["cluster"].update(n_workers="two"),
            "cluster.n_workers: Input should be a valid integer",
        ),
        (
            lambda d: d["objective"].update(kind="significance"),
            "objective.kind: Input should be 'sigma_poi', 'discovery_significance' or 'cls'",
        ),
        (
            lambda d: d["optimizer"].update(hardness={"schedule": "linear", "start": 1.0}),
            "optimizer.hardness: schedule 'linear' needs 'end'",
        ),
        (
            lambda d: d["processor"]["parameters"]["jet_pt"].update(bounds=[40, 30]),
            "processor.parameters.jet_pt: bounds must be [low, high] with low < high",
        ),
        (
            lambda d: d["model"]["regions"][1].update(binnig=[0, 1]),
            "model.regions[1].binnig: unknown key (did you mean 'binning'?)",
        ),
        (
            lambda d: d["model"]["norm_factors"][0].update(samples="tt"),
            "model.norm_factors[0].samples: 'tt' is not defined",
        ),
        (lambda d: d["model"].update(poi="mu"), "model.poi: 'mu' is not a NormFactor"),
        (lambda d: d["model"].pop("regions"), "model.regions: Field required; add it"),
    ],
)
def test_bad_fields_name_the_file_field_and_fix(raw, edit, expected):
    data = copy.deepcopy(raw)
    edit(data)
    assert expected in _error(data)


def test_several_errors_are_reported_together(raw):
    data = copy.deepcopy(raw)
    data["optimizer"]["steps"] = "x"
    data["engine"]["chunk_sise"] = 5
    message = _error(data)
    assert "optimizer.steps" in message
    assert "engine.chunk_sise: unknown key (did you mean 'chunk_size'?)" in message


def test_files_missing_or_not_yaml_or_extending_badly(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read the workflow file .*nope.yaml"):
        load_workflow(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optimizer: {steps: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line 2"):
        load_workflow(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_workflow(loop)
    orphan = tmp_path / "orphan.yaml"
    orphan.write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"orphan.yaml: extends: cannot read .*missing.yaml"):
        load_workflow(orphan)


def test_extends_merges_sections_and_replaces_a_different_kind(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(
        f"extends: {DEFAULT}\n"
        "optimizer: {steps: 3}\n"
        "cluster: {kind: inprocess}\n"
        "processor: {parameters: {btag: {optimise: false}}}\n"
    )
    workflow = load_workflow(child)
    base = load_workflow(DEFAULT)
    assert workflow.optimizer.steps == 3
    assert workflow.optimizer.learning_rate == base.optimizer.learning_rate  # merged, not replaced
    assert workflow.cluster.kind == "inprocess"  # another kind replaces the section
    assert workflow.processor.parameters["btag"].optimise is False
    assert workflow.processor.parameters["btag"].scale == base.processor.parameters["btag"].scale


def test_workflow_defaults_fill_everything_but_the_model(raw):
    workflow = parse_workflow({"model": raw["model"]})
    assert isinstance(workflow, Workflow)
    assert workflow.dataset.kind == "synthetic"
    assert workflow.outputs.folder == Path("results")


def test_processor_overrides_are_checked_against_the_processor(raw):
    processor = get_processor("agc_ttbar")
    workflow = load_workflow(DEFAULT)
    parameters, frozen = resolve_parameters(workflow.processor, processor)
    assert [p.name for p in parameters] == list(processor.parameter_names)
    assert frozen == []
    for data, match in (
        (
            {"jet_ptt": {"init": 30}},
            r"processor.parameters.jet_ptt: .* \(did you mean 'jet_pt'\?\)",
        ),
        (
            {"jet_pt": {"bounds": [10, 40]}},
            r"processor.parameters.jet_pt.bounds: \[10, 40\] reaches outside",
        ),
        ({"jet_pt": {"init": 70}}, r"processor.parameters.jet_pt: .*init 70.0 lies outside"),
    ):
        spec = parse_workflow({**raw, "processor": {"parameters": data}}).processor
        with pytest.raises(ConfigError, match=match):
            resolve_parameters(spec, processor)
    spec = parse_workflow(
        {**raw, "processor": {"parameters": {"btag": {"optimise": False, "init": 0.6}}}}
    ).processor
    parameters, frozen = resolve_parameters(spec, processor)
    assert frozen == ["btag"]
    assert parameters[2].init == 0.6
