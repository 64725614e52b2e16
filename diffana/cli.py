"""The ``diffana`` command (also ``python -m diffana``).

Each subcommand is registered by a small ``_add_*`` function that imports its implementation
lazily, so ``diffana --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from diffana._version import __version__
from diffana.errors import DiffanaError

__all__ = ["build_parser", "main"]

_err = Console(stderr=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffana",
        description="A columnar HEP analysis as a differentiable program at cluster scale.",
    )
    parser.add_argument("--version", action="version", version=f"diffana {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def _stats_command(name: str):
    def handler(args: argparse.Namespace) -> int:
        from diffana.stats.commands import run

        return run(name, args)

    return handler


def _stats_inputs(p: argparse.ArgumentParser, *, settings: bool = True) -> None:
    p.add_argument("workspace", help="pyhf JSON workspace file ('-' reads stdin)")
    p.add_argument(
        "-p",
        "--patch",
        action="append",
        default=[],
        metavar="FILE",
        help="JSON Patch file, or PatchSet file with --patch-name (repeatable)",
    )
    p.add_argument(
        "--patch-name",
        default=None,
        metavar="NAME",
        help="the patch of a PatchSet file: its name, or its values joined by commas",
    )
    if settings:
        p.add_argument("--measurement", default=None, help="measurement name (default: the first)")
        p.add_argument(
            "--modifier-setting",
            action="append",
            default=[],
            metavar="TYPE=CODE",
            help="interpolation code, e.g. normsys=code1 (pyhf modifier_settings)",
        )


def _add_cls(sub) -> None:
    p = sub.add_parser("cls", help="CLs of a pyhf workspace at one POI value (JSON, as pyhf cls)")
    _stats_inputs(p)
    p.add_argument("--test-poi", type=float, default=1.0, help="the POI value tested")
    p.add_argument("--test-stat", choices=["q", "qtilde", "q0"], default="qtilde")
    p.add_argument("--calctype", choices=["asymptotics", "toybased"], default="asymptotics")
    p.add_argument("--ntoys", type=int, default=2000, help="toys per hypothesis (toybased)")
    p.set_defaults(func=_stats_command("cls"))


def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="maximum-likelihood fit of a pyhf workspace (JSON)")
    _stats_inputs(p)
    p.set_defaults(func=_stats_command("fit"))


def _add_limit(sub) -> None:
    p = sub.add_parser("limit", help="95%% CL upper limits on the POI (JSON: obs, exp band)")
    _stats_inputs(p)
    p.add_argument(
        "--scan",
        default=None,
        metavar="LOW:HIGH:N",
        help="POI grid to interpolate on (default: root finding)",
    )
    p.set_defaults(func=_stats_command("limit"))


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="channels, samples, modifiers, parameters of a workspace")
    _stats_inputs(p, settings=False)
    p.add_argument("--json", action="store_true", help="print pyhf's inspect JSON, not tables")
    p.set_defaults(func=_stats_command("inspect"))


def _generate_command(args: argparse.Namespace) -> int:
    from diffana.datasets.summary import command

    return command(args)


def _add_generate(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="write the built-in synthetic AGC-like NanoAOD dataset (ROOT files + fileset.json)",
        description="Write the built-in synthetic AGC-like NanoAOD dataset into OUTDIR (a new or "
        "empty folder): ROOT files with a tree 'Events' and OUTDIR/fileset.json in coffea's "
        "format, then print its AGC yields in 4j1b and 4j2b.",
    )
    p.add_argument("outdir", metavar="OUTDIR", help="a new or empty folder")
    p.add_argument(
        "--events-per-sample",
        type=int,
        default=None,
        metavar="N",
        help="generated ttbar nominal events (default 500000); other samples scale with it",
    )
    p.add_argument(
        "--files-per-sample",
        type=int,
        default=None,
        metavar="K",
        help="files per dataset (default 2)",
    )
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default 2015)")
    p.add_argument(
        "--compression",
        default="lz4",
        metavar="{lz4,zlib,zstd,none}",
        help="ROOT compression (default lz4: reads ~4x faster than zlib at 1.4x the size)",
    )
    p.add_argument(
        "--samples",
        nargs="+",
        default=None,
        metavar="NAME",
        help="datasets to write (default: all)",
    )
    p.add_argument("--jobs", type=int, default=1, help="files generated in parallel (default 1)")
    p.add_argument(
        "--reference",
        default=None,
        metavar="JSON",
        help="AGC histogram JSON (histos_*_file_per_process.json) to compare the yields with",
    )
    p.set_defaults(func=_generate_command)


def _histograms_command(args: argparse.Namespace) -> int:
    from diffana.processors.output import command

    return command(args)


def _add_histograms(sub) -> None:
    p = sub.add_parser(
        "histograms",
        help="the hard pass of a processor alone: every histogram as JSON (edges, values, variances)",
        description="Skim FILESET_OR_ROOT_FILE with the processor, run its hard pass at the given "
        "parameters and write every histogram to OUT.json as {name: {edges, values, variances}}, "
        "flow bins included (values and variances have len(edges) + 1 entries).",
    )
    p.add_argument(
        "input",
        metavar="FILESET_OR_ROOT_FILE",
        help="a coffea fileset JSON, a folder written by 'diffana generate', the AGC's "
        "nanoaod_inputs.json, or one ROOT file (local path, https:// or root:// URL)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT.json", help="the JSON file to write"
    )
    p.add_argument("--processor", default="agc_ttbar", help="registered name or module:Class")
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a cut (repeatable)"
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a processor option, VALUE as JSON, e.g. max_jets=12 (repeatable)",
    )
    p.add_argument(
        "--cluster",
        default=None,
        help="'local' (a LocalCluster) or a scheduler address tcp://host:port (default: in process)",
    )
    p.add_argument("--chunk-size", type=int, default=100_000, help="entries per chunk")
    p.add_argument(
        "--block-size",
        type=int,
        default=None,
        help="events per kernel call (default: the engine's slab size)",
    )
    p.add_argument("--treename", default="Events", help="tree of files that do not name one")
    p.add_argument(
        "--skip-bad-files", action="store_true", help="skip unreadable files, report them"
    )
    single = p.add_argument_group("a single ROOT file")
    single.add_argument("--process", default="ttbar", help="process of the file (default ttbar)")
    single.add_argument("--variation", default="nominal", help="variation (default nominal)")
    single.add_argument(
        "--xsec", type=float, default=None, help="cross-section in pb (default: the AGC's)"
    )
    single.add_argument(
        "--nevts", type=int, default=None, help="generated events (default: the file's entries)"
    )
    p.add_argument(
        "--max-files",
        type=int,
        default=None,
        metavar="N",
        help="files per dataset of the AGC's nanoaod_inputs.json (default: all)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or run report")
    p.set_defaults(func=_histograms_command)


def _workflow_command(module: str):
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return importlib.import_module(module).command(args)

    return handler


def _workflow_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "workflow",
        nargs="?",
        default=None,
        metavar="WORKFLOW",
        help="workflow YAML file (default: workflows/agc_ttbar.yaml)",
    )
    p.add_argument(
        "-o", "--output", default=None, metavar="DIR", help="result folder (default: results/)"
    )
    p.add_argument(
        "--cluster",
        default=None,
        help="override the workflow's cluster: inprocess, local, tcp://host:port or a YAML file",
    )


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="the main job: skim, optimise the cuts, re-evaluate hard, write OUTPUT/result.json",
        description="Make or reuse the dataset, skim it once on the cluster, optimise the cut "
        "parameters by gradient descent on the workflow's objective, re-evaluate hard at the "
        "initial and final cuts (histograms, pyhf workspace, fit, plots) and write "
        "OUTPUT/result.json.",
    )
    _workflow_inputs(p)
    p.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT/checkpoint.json if it exists"
    )
    p.set_defaults(func=_workflow_command("diffana.run"))


def _add_scan(sub) -> None:
    p = sub.add_parser(
        "scan",
        help="the workflow's objective evaluated hard on a grid of the cut parameters",
        description="Skim once, then evaluate the objective with hard cuts at every point of a "
        "grid of the optimised parameters; write OUTPUT/scan.json with the grid optimum and its "
        "compute (wall time, passes, events).",
    )
    _workflow_inputs(p)
    p.add_argument(
        "--grid",
        type=int,
        default=None,
        metavar="N",
        help="points per parameter (default: the workflow's scan.grid)",
    )
    p.set_defaults(func=_workflow_command("diffana.scan"))


_COMMANDS: list = [
    _add_cls,
    _add_fit,
    _add_limit,
    _add_inspect,
    _add_generate,
    _add_histograms,
    _add_run,
    _add_scan,
]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DiffanaError as exc:
        _err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        # what is written stays: `diffana run --resume` continues from the last checkpoint
        _err.print("[bold red]interrupted[/]; files already written are kept", highlight=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
