"""The shards of one collection as the coordinator sees them: a `ShardGroup` answers fan-out calls.

`retrieval.distributed.shards` implements it with named, detached Ray actors; the coordinator logic
(`retrieval.sharding.collection`) holds no Ray. A call that a shard cannot answer (its actor restarting, its node
gone, a timeout) comes back as a `ShardDown` value rather than an exception, so the caller decides: 503 naming
the shard, or a partial answer when the request allows one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["ShardBackend", "ShardDown", "ShardGroup"]


@dataclass(frozen=True)
class ShardDown:
    """A shard that did not answer one call, and why."""

    shard: int  # its index
    reason: str  # e.g. "restarting", "node gone", "timed out after 30 s"


class ShardGroup(Protocol):
    """The S shards of one collection."""

    size: int  # S
    hosts: list[str]  # the stable name of the host each shard is pinned to (a node label, or the node's IP)

    def call(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]], timeout_s: float) -> dict[int, Any]:
        """Run `{shard: (method, args)}` concurrently; each value is the method's result or a `ShardDown`.
        Domain errors a shard raises (a missing document, a bad filter) are raised here unchanged."""
        ...

    def remove(self) -> None:
        """Stop every shard actor for good (after each has dropped its data)."""
        ...


class ShardBackend(Protocol):
    """What makes shard groups (one per sharded collection); Ray's in `retrieval.distributed.shards`."""

    def open_group(
        self, collection: str, spec_json: Mapping[str, Any], dims: Mapping[str, int], shards: int, *, create: bool
    ) -> ShardGroup:
        """The collection's shards: placed and started when `create`, else found again (or restarted where
        their placement says) after a restart of the service."""
        ...

    def describe(self) -> str:
        """The cluster, for logs and `/readyz` (e.g. "ray at 10.0.0.1:6379, 3 nodes")."""
        ...


Calls = Mapping[int, tuple[str, tuple[Any, ...]]]
Shards = Sequence[int]
