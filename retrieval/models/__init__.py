"""The models this process serves and what runs them: the registry of served engines by name (`registry`),
the vLLM-compatible offline API and scoring (`serving`: `LLM`, pair scoring, outputs, IO plugins), and engine
processes on the same host that batch the inputs of several API workers over ZeroMQ (`engines`).

May import: `encoder`, `poolers`, `retrieval.config`, `retrieval.common`, `retrieval.errors`; never the
collection side (`spec`, `store`, `search`, ...). Import the submodules directly."""

__all__: list[str] = []
