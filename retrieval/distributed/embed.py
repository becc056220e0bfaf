"""`embed_dataset`: chunk and encode a corpus as a Ray Data job, one Parquet file per input block.

The plan (`blocks.py`) runs on the driver; Ray Data feeds the blocks whose output is missing to a pool of
stateful actors (`map_batches` over an `ActorPoolStrategy`), one per GPU (`num_gpus`) or `actors` CPU actors.
Each actor loads the `Engine` once and, per block, parses with the service's parsers, chunks and encodes with
the service's own ingest plan (`plan_ingest` / `finish`: the chunks and vectors a collection with the same
`chunking` would store), and writes the block's file atomically (temporary name, fsync, rename), with the
model record in the schema metadata. A killed job leaves whole files only, so running it again writes
exactly the missing blocks. Ray owns placement, retries and progress; nothing here schedules.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray
import ray.data

from encoder import M3_TASK, Engine, ModelSpec
from retrieval.bulk import as_metadata, fingerprint_for, records_table
from retrieval.distributed.blocks import Block, plan_blocks, read_block
from retrieval.distributed.cluster import LOCAL, embed_address
from retrieval.ingest.pipeline import finish, plan_ingest
from retrieval.models.registry import ModelRegistry
from retrieval.spec.collection import ChunkingSpec, CollectionSpec
from retrieval.spec.encoders import Encoders

__all__ = ["EmbedReport", "embed_dataset"]

_KINDS = ("dense", "multivector", "sparse")


@dataclass
class EmbedReport:
    """What an embed job did."""

    blocks: int = 0  # blocks in the plan
    skipped: int = 0  # blocks whose output existed already (resumed)
    written: int = 0  # blocks written by this run
    documents: int = 0  # documents embedded by this run
    chunks: int = 0  # chunk rows written by this run
    errors: list[str] = field(default_factory=list)  # files that could not be read ("name: why")
    seconds: float = 0.0  # wall time
    output: Path = Path()  # the folder of Parquet files


def _kinds(engine: Engine) -> list[str]:
    """The representations `embed` writes: the model's own. A dense model's token vectors (a collection may keep
    them for late interaction) are not written: about 200 kB a document, and `load` encodes what is missing."""
    reps = engine.representations
    if "dense" in reps and not engine.late_interaction and not engine.supports(M3_TASK):
        reps = reps - {"multivector"}
    return [k for k in _KINDS if k in reps]


def _spec(engine: Engine, chunking: ChunkingSpec) -> CollectionSpec:
    reps = _kinds(engine)
    return CollectionSpec(
        name="embed",
        dense_model=engine.name if "dense" in reps else None,
        multivector_model=engine.name if "multivector" in reps else None,
        sparse_model=engine.name if "sparse" in reps else None,
        bm25=False,
        chunking=chunking,
    )


def _model_record(engine: Engine, chunking: ChunkingSpec) -> tuple[list[str], dict[bytes, Any]]:
    kinds = _kinds(engine)
    return kinds, as_metadata({k: fingerprint_for(engine, k, kinds) for k in kinds}, chunking)


class EmbedActor:
    """A stateful Ray Data worker: one `Engine`, reused for every block it is given."""

    def __init__(self, spec: dict[str, Any], chunking: dict[str, Any], output: str, threads: int) -> None:
        import msgspec
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        self.engine = Engine.load(msgspec.convert(spec, ModelSpec))
        self.chunking = msgspec.convert(chunking, ChunkingSpec)
        self.spec = _spec(self.engine, self.chunking)
        self.encoders = Encoders.of(self.spec, ModelRegistry([self.engine]))
        self.kinds, self.metadata = _model_record(self.engine, self.chunking)
        self.dims = {"dense": self.engine.output_dimensions("embed")} if "dense" in self.kinds else {}
        self.output = Path(output)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"index": [], "documents": [], "chunks": [], "errors": []}
        for i in range(len(batch["index"])):
            block = Block.from_row({k: batch[k][i] for k in ("index", "key", "parts")})
            docs, chunks, errors = self._embed(block)
            out["index"].append(block.index)
            out["documents"].append(docs)
            out["chunks"].append(chunks)
            out["errors"].append(json.dumps(errors))
        return out

    def _embed(self, block: Block) -> tuple[int, int, list[str]]:
        errors: list[str] = []
        docs = read_block(block, errors)
        unique = list({d.id: d for d in docs}.values())  # a repeated id: the later document wins, as on ingest
        plan = plan_ingest(unique, self.spec, self.encoders)
        results = {name: self.engine.run_sync(calls) for name, calls in plan.calls.items()}
        records = finish(plan, results)
        table = records_table(records, self.kinds, self.dims, self.metadata)
        _write_atomic(table, self.output / block.output_name)
        return len(records), table.num_rows, errors


def _write_atomic(table: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _ensure_ray(address: str | None, num_cpus: int | None) -> None:
    """Join `address` (checked first: `retrieval.distributed.cluster.embed_address`), or the live cluster of this
    machine, or start a local one. Ray's own lines (its start-up notes, the core worker's warnings such as `E
    core_worker.cc ... constructor arguments in the object store`, Ray Data's progress log) go to Ray's log files,
    not to this command's output."""
    if ray.is_initialized():
        return
    target = embed_address(address)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the core worker's lines below fatal: files only
    local = target == LOCAL
    with _stderr_aside():  # what Ray prints while it starts (and the note that the level above was read)
        ray.init(
            address=target,
            num_cpus=num_cpus if local else None,
            include_dashboard=False if local else None,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    for handler in logging.getLogger("ray.data").handlers:  # Ray Data's console lines; its log file keeps all
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)


@contextlib.contextmanager
def _stderr_aside() -> Iterator[None]:
    """File descriptor 2 into a scratch file for the block (native code writes there, past `sys.stderr`); what
    was written is shown if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            scratch.seek(0)
            sys.stderr.write(scratch.read().decode(errors="replace")[-4000:])
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _salt(spec: ModelSpec, chunking: ChunkingSpec) -> str:
    """What the outputs depend on besides the inputs: the model's weights digest and settings, the chunking."""
    from encoder.fingerprint import weights_digest
    from encoder.resolve import locate

    root = locate(spec.source, spec.revision)
    return json.dumps([weights_digest(root), spec.name, spec.max_model_len, str(spec.pooler_config), repr(chunking)])


def _clean_leftovers(output: Path) -> None:
    """Temporary files of writes a killed run left behind."""
    for tmp in output.glob(".part-*.tmp"):
        tmp.unlink(missing_ok=True)


def _pool(actors: int | None, gpus_per_actor: float | None) -> tuple[int, float, float]:
    """(actors, GPUs each, CPUs each): one actor per GPU when the cluster has GPUs, else `actors` CPU actors."""
    gpus = float(ray.cluster_resources().get("GPU", 0))
    cpus = float(ray.cluster_resources().get("CPU", 1))
    largest = max((float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=cpus)
    per_gpu = gpus_per_actor if gpus_per_actor is not None else (1.0 if gpus else 0.0)
    count = actors or (max(1, int(gpus / per_gpu)) if per_gpu else 1)
    # an actor lives on one node: never ask for more CPUs than the largest node has (it would wait forever)
    return count, per_gpu, max(1.0, min(largest, cpus // count)) if not per_gpu else 1.0


def embed_dataset(
    paths: Sequence[Path | str],
    output: Path | str,
    *,
    model: ModelSpec,
    chunking: ChunkingSpec | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    block_size: int = 1000,
    address: str | None = None,
    num_cpus: int | None = None,
) -> EmbedReport:
    """Embed the documents under `paths` into Parquet files in `output` (see the module doc).

    Uses the Ray instance already initialised in this process, else connects to `address`, else starts a local
    one (`num_cpus`). `actors`: encoder actors (default one per GPU, or 1); `block_size`: documents (JSONL
    lines, loose files) per output file. Blocks whose file exists are skipped, so a re-run resumes.
    """
    started = time.perf_counter()
    chunking = chunking or ChunkingSpec()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(out)
    blocks = plan_blocks([Path(p) for p in paths], block_size, _salt(model, chunking))
    todo = [b for b in blocks if not (out / b.output_name).exists()]
    report = EmbedReport(blocks=len(blocks), skipped=len(blocks) - len(todo), output=out)
    if todo:
        _ensure_ray(address, num_cpus)
        _run(todo, out, model, chunking, _pool(actors, gpus_per_actor), report)
    report.seconds = time.perf_counter() - started
    return report


def _run(
    todo: list[Block],
    out: Path,
    model: ModelSpec,
    chunking: ChunkingSpec,
    pool: tuple[int, float, float],
    report: EmbedReport,
) -> None:
    import msgspec

    count, gpus, cpus = pool
    items = ray.data.from_items([b.to_row() for b in todo], override_num_blocks=len(todo))
    ds = items.map_batches(
        EmbedActor,
        fn_constructor_kwargs={
            "spec": msgspec.to_builtins(model),
            "chunking": msgspec.to_builtins(chunking),
            "output": str(out),
            "threads": 0 if gpus else int(cpus),
        },
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(count, len(todo))),
        num_gpus=gpus or None,
        num_cpus=cpus,
    )
    for row in ds.iter_rows():
        report.written += 1
        report.documents += int(row["documents"])
        report.chunks += int(row["chunks"])
        report.errors += json.loads(row["errors"])


def local_ray_dir() -> str:
    """A short, private folder for a local Ray instance's sockets and logs (callers remove it)."""
    return tempfile.mkdtemp(prefix="ray-", dir="/tmp")
