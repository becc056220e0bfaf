"""Engine replicas: the encoders of `retrieval serve --ray ... --engine-replicas N` as Ray actors.

Each `EngineReplica` loads the served models (the same `ModelSpec`s as the service) and answers the packed
messages of `retrieval/models/engines` (an `EncodeRequest` in, an `EncodeReply` or `ErrorReply` out, as bytes), so the
API side is the same `RemoteBatcher` as with `--engine-processes`, only the transport differs. Admission is the
replica's own batcher queue (`max_queue` per model); `load` reports what it holds so API processes refuse
before tokenising when every replica is full, and route to the least loaded.

Ray owns placement (`SPREAD` over nodes, `num_gpus=1` each when the cluster has GPUs) and restarts
(`max_restarts`); calls are never retried by Ray (`max_task_retries=0`): a replica that dies fails its calls,
which the API answers 503. The replicas are named actors in `NAMESPACE`, owned by the process that launched
them (they go when it goes).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import ray

from encoder import ModelSpec
from retrieval.config import ServiceConfig
from retrieval.distributed.cluster import serve_address
from retrieval.models.engines.engine_process import answer_encode
from retrieval.models.engines.messages import EncodeRequest, ErrorReply, Message, decode_message, encode_message
from retrieval.models.registry import ModelRegistry

__all__ = [
    "NAMESPACE",
    "EngineReplica",
    "cluster_address",
    "connect",
    "launch_replicas",
    "replica_options",
    "stop_replicas",
]

log = logging.getLogger(__name__)

NAMESPACE = "retrieval"  # the Ray namespace of the service's named actors
MAX_RESTARTS = 8  # times Ray restarts a replica that died (its models load again)
_READY_TIMEOUT_S = 600.0  # a replica has this long to be placed and load its models

Load = dict[str, tuple[int, int]]  # served model name -> (sequences in flight, queue limit)


class EngineReplica:
    """One engine replica (a Ray actor: `ray.remote(EngineReplica)`): a `ModelRegistry` answering packed
    messages. Its methods run on the actor's event loop; forward passes run in the models' batcher threads."""

    def __init__(self, specs: Sequence[ModelSpec]) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s replica[%(process)d] %(levelname)s %(message)s")
        self._registry = ModelRegistry.load(specs)
        self._in_flight = {engine.name: 0 for engine in self._registry}  # sequences queued or running
        self._limits = {engine.name: engine.info.spec.max_queue for engine in self._registry}

    async def ready(self) -> list[str]:
        """The served model names, once loaded (Ray runs no call before `__init__` has returned)."""
        return self._registry.names

    async def load(self) -> Load:
        """What each model holds now and its queue limit, for admission and routing in the API processes."""
        return {name: (count, self._limits[name]) for name, count in self._in_flight.items()}

    async def encode(self, payload: bytes) -> bytes:
        """A packed `EncodeRequest` -> its packed `EncodeReply` or `ErrorReply` (messages.py, the same bytes an
        engine process answers). Cancelling the call (`ray.cancel`) cancels the work."""
        request = decode_message(payload)
        reply: Message
        if isinstance(request, EncodeRequest):
            reply = await answer_encode(self._registry, request, self._count)
        else:
            reply = ErrorReply(0, "internal", f"an engine replica answers encode requests, not {type(request)}")
        return encode_message(reply)

    def _count(self, model: str, sequences: int) -> None:
        self._in_flight[model] = self._in_flight.get(model, 0) + sequences


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto": RAY_ADDRESS, the cluster started on this machine, else a new
    local one); nothing when this process is connected already. A cluster that does not answer (a stale record of
    one that died without `ray stop`) is a RayClusterUnavailableError at once (`retrieval.distributed.cluster`)."""
    if not ray.is_initialized():
        ray.init(address=serve_address(address), namespace=NAMESPACE, log_to_driver=True)


def cluster_address() -> str:
    """The address of the cluster this process joined (for processes that should join the same one)."""
    return str(ray.get_runtime_context().gcs_address)


def replica_options(config: ServiceConfig, cluster_gpus: float) -> dict[str, Any]:
    """Ray actor options of every replica: `engine_gpus` GPUs (default 1 when the cluster has any and the
    models are not all pinned to CPU, else 0), `engine_cpus` CPUs, spread over nodes, restarted by Ray, calls
    never retried.

    >>> replica_options(ServiceConfig(), 4)["num_gpus"], replica_options(ServiceConfig(), 0)["num_gpus"]
    (1, 0)
    >>> replica_options(ServiceConfig(models=(ModelSpec(source="m", device="cpu"),)), 4)["num_gpus"]
    0
    """
    on_cpu = bool(config.models) and all(spec.device == "cpu" for spec in config.models)
    default = 1 if cluster_gpus > 0 and not on_cpu else 0
    gpus = config.engine_gpus if config.engine_gpus is not None else default
    return {
        "num_gpus": gpus,
        "num_cpus": config.engine_cpus,
        "scheduling_strategy": "SPREAD",
        "max_restarts": MAX_RESTARTS,
        "max_task_retries": 0,
        "namespace": NAMESPACE,
    }


def launch_replicas(config: ServiceConfig) -> list[tuple[str, Any]]:
    """Start `config.engine_replicas` replicas of `config.models` on the cluster `config.ray` and wait until
    every one has loaded them; `(actor name, handle)` of each. Ray stops a replica once no handle to it is left
    in its owner (this process): hold them while serving. Raises RuntimeError (the replicas stopped) when one
    fails or cannot be placed within the timeout."""
    if config.ray is None:
        raise ValueError("engine replicas need a Ray cluster (ServiceConfig.ray)")
    connect(config.ray)
    cluster = ray.cluster_resources()
    options = replica_options(config, cluster.get("GPU", 0))
    _check_fits(options, cluster)
    prefix = f"engine-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{i}" for i in range(config.engine_replicas)]
    actor: Any = ray.remote(EngineReplica)  # handles are typed loosely: their methods are Ray's `.remote`
    specs = tuple(config.models)
    handles = [actor.options(name=name, **options).remote(specs) for name in names]
    try:
        ray.get([h.ready.remote() for h in handles], timeout=_READY_TIMEOUT_S)
    except (ray.exceptions.RayError, TimeoutError) as exc:
        stop_replicas(names)
        need = f"{options['num_cpus']} CPU and {options['num_gpus']} GPU each"
        raise RuntimeError(
            f"engine replicas did not start ({need}; the cluster has {ray.cluster_resources()}): {exc}"
        ) from exc
    log.info("%d engine replicas ready: %s (%s)", len(names), ", ".join(names), msgspec.json.encode(options))
    return list(zip(names, handles, strict=True))


def _check_fits(options: dict[str, Any], cluster: dict[str, float]) -> None:
    """Refuse at once (RuntimeError) a replica larger than the whole cluster: Ray would wait for it forever."""
    for key, resource in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        if options[key] > cluster.get(resource, 0):
            raise RuntimeError(
                f"an engine replica asks {options[key]} {resource}, the whole Ray cluster has "
                f"{cluster.get(resource, 0)}: lower --engine-{resource.lower()}s or add nodes"
            )


def stop_replicas(names: Sequence[str]) -> None:
    """Kill the named replicas (no restart); names already gone are skipped."""
    for name in names:
        try:
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
        except ValueError:  # no such actor (never started, or already gone)
            continue
