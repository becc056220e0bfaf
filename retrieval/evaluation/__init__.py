"""Measuring search on the caller's judgments: the measures and judgment readers (`measures`: nDCG@10,
recall@100, MRR@10, BEIR files), evaluation runs over a collection (`runs`), the reports as text tables, JSON
and charts (`reports`), and choosing search defaults from judgments (`tune`).

May import: `retrieval.search`, `retrieval.indexes`, `retrieval.spec`, `retrieval.store`, `retrieval.models`,
`retrieval.common`, `retrieval.errors`. The measures are re-exported here (`from retrieval.evaluation import
load_beir` as before the package); import the other submodules directly."""

from retrieval.evaluation import measures
from retrieval.evaluation.measures import *  # noqa: F403  (`retrieval.evaluation` was the measures module)

__all__ = list(measures.__all__)
