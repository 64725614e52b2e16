"""A diffana processor as a ``coffea.processor.ProcessorABC``: its pass through coffea's own runner.

``process(events)`` runs the processor's skim on the chunk coffea hands over, turns the result into
the same padded blocks the engine uses, evaluates the same compiled kernel (hard by default) and
returns ``{name: hist.Hist}``; coffea's runner adds the chunks' dictionaries. The result is the
engine's hard pass, computed by coffea's executors (iterative, futures, Dask) instead of diffana's.

Examples:
    Run the hard pass of processor ``proc`` with coffea (not executed here)::

        from coffea import processor
        from coffea.nanoevents import NanoAODSchema

        runner = processor.Runner(processor.IterativeExecutor(), schema=NanoAODSchema, chunksize=100_000)
        hists = runner(fileset, treename="Events", processor_instance=CoffeaProcessor(proc))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from coffea.processor import ProcessorABC

from diffana.pipeline.blocks import pack_skim, unpack_skim
from diffana.pipeline.evaluate import evaluate_chunk, param_vector
from diffana.processors.base import Chunk, Processor

__all__ = ["CoffeaProcessor"]


class CoffeaProcessor(ProcessorABC):
    """Wrap ``processor`` for coffea's runner, at fixed ``params`` and ``hardness`` (hard by default)."""

    def __init__(
        self,
        processor: Processor,
        params: Mapping[str, float] | None = None,
        *,
        hardness: float = math.inf,
    ) -> None:
        self.processor = processor
        self.theta = param_vector(processor, params)
        self.hardness = float(hardness)
        self.fingerprint = processor.fingerprint()

    def process(self, events: Any) -> dict[str, Any]:
        meta = dict(events.metadata)
        chunk = Chunk(
            meta["dataset"],
            meta["filename"],
            meta["treename"],
            int(meta["entrystart"]),
            int(meta["entrystop"]),
            meta,
            str(meta.get("fileuuid", "")),
        )
        blocks = unpack_skim(
            pack_skim(self.processor.skim(events)), chunk, prepare=self.processor.prepare
        )
        partial = evaluate_chunk(
            blocks, self.processor, self.fingerprint, self.theta, self.hardness, "value"
        )
        return {name: part.to_soft().to_hist() for name, part in partial.hists.items()}

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator
