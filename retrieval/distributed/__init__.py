"""Past one machine, on Ray: `embed_dataset` runs the chunk-and-encode half of a large ingest as a Ray Data
job writing Parquet that `retrieval load` (no Ray needed) bulk-loads. The only package that imports Ray; import
it only when asked for (the one-process service never does). Its shard actors implement
`retrieval.sharding.group.ShardBackend`.

May import: `retrieval.sharding` and everything below it; never `service`, `reindex`, `sdk` or `cli`.
"""

from __future__ import annotations

from retrieval.distributed.blocks import Block, plan_blocks
from retrieval.distributed.embed import EmbedReport, embed_dataset

__all__ = ["Block", "EmbedReport", "embed_dataset", "plan_blocks"]
