"""Choosing a collection's search defaults (fusion, candidates, rerank depth) on the caller's judgments: the
search over settings (`tuner`), the candidate grid (`grid`), the lists each setting fuses (`lists`) and the
pick between close settings (`choice`).

May import: the rest of `retrieval.evaluation.measures` and what it may import. Import the submodules directly."""

__all__: list[str] = []
