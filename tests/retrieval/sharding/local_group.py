"""An in-process `ShardBackend` for the coordinator tests: real `ShardCore`s (stores, indexes, snapshots) in this
process instead of Ray actors, and a switch that takes a shard down. The Ray backend is tested against a real
cluster in tests/retrieval/distributed/test_shards.py."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retrieval.sharding.group import ShardDown
from retrieval.sharding.shard import ShardCore


class LocalGroup:
    def __init__(self, folder: Path, spec_json: Mapping[str, Any], dims: Mapping[str, int], shards: int) -> None:
        self.folder, self.args = folder, (dict(spec_json), dict(dims))
        self.size = shards
        self.hosts = ["local"] * shards
        self.cores = [ShardCore(folder / str(s), s, *self.args) for s in range(shards)]
        self.down: set[int] = set()  # shards that answer nothing (as a restarting actor)

    def call(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]], timeout_s: float) -> dict[int, Any]:
        return {
            s: ShardDown(s, "down in this test") if s in self.down else getattr(self.cores[s], m)(*a)
            for s, (m, a) in calls.items()
        }

    def restart(self, shard: int) -> None:
        """What Ray does after a crash: a fresh ShardCore over the same folder (snapshots + store replay)."""
        self.cores[shard] = ShardCore(self.folder / str(shard), shard, *self.args)
        self.down.discard(shard)

    def remove(self) -> None:
        self.cores = []


class LocalBackend:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.groups: dict[str, LocalGroup] = {}

    def open_group(
        self, collection: str, spec_json: Mapping[str, Any], dims: Mapping[str, int], shards: int, *, create: bool
    ) -> LocalGroup:
        group = LocalGroup(self.root / collection, spec_json, dims, shards)
        self.groups[collection] = group
        return group

    def describe(self) -> str:
        return "in-process shards (tests)"
