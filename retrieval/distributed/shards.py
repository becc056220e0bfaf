"""Shards of sharded collections as named, detached Ray actors (`retrieval serve --ray`).

Each shard of collection C is the actor `C/<i>@<tag>` in the service's Ray namespace (the tag names the
service's data directory, so two services sharing a cluster never share actors), created with
`lifetime="detached"` (it outlives the API process, which finds it again by name after a restart) and
`max_restarts=-1` (Ray restarts it after a crash; it reopens its store and snapshots). A shard is pinned to one
host, because its data directory lives there: the node carrying the Ray label `retrieval-host=<name>` when the
cluster's nodes are labelled (`ray start --labels retrieval-host=node-a`), else the node's IP address. Shards are
spread over hosts round-robin at creation; the placement is kept next to the coordinator's store
(`<data-dir>/shards/<collection>/placement.json`), so a shard whose node is gone is unavailable (never opened
empty elsewhere) until a node of that host returns, and comes back there with its documents.

Everything Ray does (scheduling, restarts, actor calls) is Ray's; this module only names and places actors and
turns a shard that cannot answer into a `ShardDown`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import resource
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from retrieval.errors import InvalidRequestError, RetrievalError
from retrieval.sharding.group import ShardDown
from retrieval.sharding.shard import ShardCore

__all__ = ["HOST_LABEL", "RayShardBackend", "RayShardGroup", "backup_shards"]

log = logging.getLogger(__name__)
HOST_LABEL = "retrieval-host"  # node label naming a host that keeps shard data


class ShardActor:
    """The Ray actor of one shard: a `ShardCore` on the node it is pinned to."""

    def __init__(self, folder: str, shard: int, spec_json: dict[str, Any], dims: dict[str, int]) -> None:
        logging.basicConfig(level=logging.INFO)
        self.core = ShardCore(Path(folder), shard, spec_json, dims)
        self.node = ray.get_runtime_context().get_node_id()

    def call(self, method: str, *args: Any) -> Any:
        """`ShardCore.<method>(*args)` (the one entry point: the coordinator names the method)."""
        if method == "info":  # sizes, and the Ray node this shard runs on
            return dataclasses.replace(self.core.info(), node=self.node)
        if method == "peak_rss":  # bytes: the largest resident size this shard process has had
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if method == "rss":  # bytes resident now
            return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return getattr(self.core, method)(*args)


def _hosts() -> list[str]:
    """Alive hosts that may keep shards: the labelled nodes when any node is labelled, else every node's IP."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    labelled = sorted({n["Labels"][HOST_LABEL] for n in nodes if HOST_LABEL in (n.get("Labels") or {})})
    return labelled or sorted({n["NodeManagerAddress"] for n in nodes})


def _pin(host: str) -> dict[str, Any]:
    """Actor options that keep an actor on `host`."""
    labelled = any(HOST_LABEL in (n.get("Labels") or {}) for n in ray.nodes())
    if labelled:
        return {"label_selector": {HOST_LABEL: host}}
    return {"resources": {f"node:{host}": 0.001}}


class RayShardGroup:
    """The shard actors of one collection."""

    def __init__(self, backend: RayShardBackend, collection: str, hosts: list[str], args: tuple[Any, ...]) -> None:
        self.backend, self.collection, self.hosts = backend, collection, hosts
        self.size = len(hosts)
        self._args = args  # (spec_json, dims) every shard is created with
        self.removed = False  # the collection was deleted: no actor is ever started again
        self.actors = [self._actor(s) for s in range(self.size)]

    def _actor(self, shard: int) -> Any:
        folder = str(self.backend.shard_folder(self.collection, shard))
        options: dict[str, Any] = {
            "name": f"{self.collection}/{shard}@{self.backend.tag}",
            "namespace": self.backend.namespace,
            "lifetime": "detached",
            "get_if_exists": True,
            "max_restarts": -1,
            "max_task_retries": 0,
            "max_concurrency": self.backend.max_concurrency,
            "num_cpus": self.backend.num_cpus,
            **_pin(self.hosts[shard]),
        }
        return ray.remote(ShardActor).options(**options).remote(folder, shard, *self._args)

    def call(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]], timeout_s: float) -> dict[int, Any]:
        if self.removed:  # a call racing the delete (a snapshot, /metrics) must not start the shards again
            return {s: ShardDown(s, "the collection was deleted") for s in calls}
        refs = {s: self.actors[s].call.remote(method, *args) for s, (method, args) in calls.items()}
        deadline = time.monotonic() + timeout_s
        out: dict[int, Any] = {}
        for s, ref in refs.items():
            try:
                out[s] = ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except RayTaskError as e:  # the shard raised: a domain error is the caller's, as in one process
                if isinstance(e.cause, RetrievalError):
                    raise e.cause from None
                raise
            except GetTimeoutError:
                out[s] = ShardDown(s, f"no answer in {timeout_s:g} s")
            except ActorUnavailableError:
                out[s] = ShardDown(s, "restarting")
            except (ActorDiedError, RayActorError) as e:
                out[s] = ShardDown(s, f"stopped ({type(e).__name__}); starting it again")
                if not self.removed:
                    self.actors[s] = self._actor(s)  # a shard killed for good is started again on its host
        return out

    def remove(self, timeout_s: float = 30.0) -> None:
        """Stop every shard actor for good and wait until Ray reports them gone (a detached actor outlives its
        creator: an actor left alive would hold its folder and CPU), then forget the placement."""
        self.removed = True
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        deadline = time.monotonic() + timeout_s
        for shard in range(self.size):
            name = f"{self.collection}/{shard}@{self.backend.tag}"
            while time.monotonic() < deadline:
                try:
                    ray.get_actor(name, namespace=self.backend.namespace)
                except ValueError:  # no live actor of that name
                    break
                time.sleep(0.05)
        self.backend.forget(self.collection)


class RayShardBackend:
    """Makes and finds the shard groups of a service whose data directory is `data_dir`."""

    def __init__(
        self, data_dir: Path, namespace: str = "retrieval", *, num_cpus: float = 0, max_concurrency: int = 16
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.tag = hashlib.blake2b(str(self.data_dir).encode(), digest_size=4).hexdigest()  # in actor names
        self.namespace, self.num_cpus, self.max_concurrency = namespace, num_cpus, max_concurrency

    def shard_folder(self, collection: str, shard: int) -> Path:
        """Where shard `shard` keeps its data, on the node it runs on (the same path on every node)."""
        root = os.environ.get("RETRIEVAL_SHARD_DIR")
        return (Path(root) if root else self.data_dir / "shards") / collection / str(shard)

    def placement_file(self, collection: str) -> Path:
        """Where the hosts of `collection`'s shards are recorded (next to the coordinator's store)."""
        return self._placement(collection)

    def _placement(self, collection: str) -> Path:
        return self.data_dir / "shards" / collection / "placement.json"

    def open_group(
        self, collection: str, spec_json: Mapping[str, Any], dims: Mapping[str, int], shards: int, *, create: bool
    ) -> RayShardGroup:
        path = self._placement(collection)
        if path.is_file() and not create:
            hosts = list(json.loads(path.read_text())["hosts"])
        else:
            hosts = self._place(collection, shards)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"collection": collection, "shards": shards, "hosts": hosts}))
            os.replace(tmp, path)
        log.info("collection %s: %d shards on %s", collection, shards, hosts)
        return RayShardGroup(self, collection, hosts, (dict(spec_json), dict(dims)))

    def _place(self, collection: str, shards: int) -> list[str]:
        hosts = _hosts()
        if not hosts:
            raise InvalidRequestError("the Ray cluster has no alive node to place shards on", param="shards")
        start = sum(collection.encode()) % len(hosts)  # collections start on different hosts
        return [hosts[(start + i) % len(hosts)] for i in range(shards)]

    def forget(self, collection: str) -> None:
        """Remove what the coordinator kept of a deleted collection's shards: the placement, and its folder once
        empty (the chunk id counter beside it is removed by the collection)."""
        self._placement(collection).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty (another file kept there): left as it is
            self._placement(collection).parent.rmdir()

    def describe(self) -> str:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return f"Ray cluster with {len(nodes)} alive nodes, hosts {_hosts()}"


def backup_shards(data_dir: Path, dest: Path, namespace: str = "retrieval", timeout_s: float = 3600) -> list[str]:
    """`retrieval backup --ray`: back up every shard of the sharded collections of the service whose data
    directory is `data_dir`, each on its own node into `dest/shards/<collection>/<i>`; returns what was copied
    ("<collection>/<i>: <documents> documents"). A shard that does not answer fails the backup (InvalidRequestError
    naming it): a backup missing a shard is not a backup."""
    from retrieval.spec.collection import spec_from_json
    from retrieval.store import Store

    backend = RayShardBackend(data_dir, namespace)
    store = Store.open(Path(data_dir) / "store.sqlite3")
    done: list[str] = []
    try:
        for row in store.list_collections():
            spec = spec_from_json(row.config)
            if spec.shards < 2:
                continue
            group = backend.open_group(spec.name, row.config, row.dims, spec.shards, create=False)
            calls = {i: ("backup", (Path(dest) / "shards" / spec.name / str(i),)) for i in range(spec.shards)}
            for i, answer in sorted(group.call(calls, timeout_s).items()):
                if isinstance(answer, ShardDown):
                    raise InvalidRequestError(
                        f"shard {i} of `{spec.name}` did not answer: {answer.reason}", param="ray"
                    )
                done.append(f"{spec.name}/{i}: {answer.documents} documents")
            placement = backend.placement_file(spec.name)
            if placement.is_file():
                (Path(dest) / "shards" / spec.name).mkdir(parents=True, exist_ok=True)
                (Path(dest) / "shards" / spec.name / "placement.json").write_bytes(placement.read_bytes())
    finally:
        store.close()
    return done
