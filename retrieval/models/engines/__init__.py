"""Encoding in another process: API worker processes tokenise and send packed inputs over ZeroMQ to one
engine process per device, which batches them across every worker (`--api-workers N`). Same host only; the
Ray engine replicas (`retrieval.distributed.replicas`) carry the same messages.

May import: `encoder`, `retrieval.models.registry`, `retrieval.common`, `retrieval.errors`."""

from retrieval.models.engines.client import EngineClient, RemoteBatcher
from retrieval.models.engines.engine_process import run_engine_process
from retrieval.models.engines.load_board import LoadBoard
from retrieval.models.engines.messages import decode_message, encode_message

__all__ = ["EngineClient", "LoadBoard", "RemoteBatcher", "decode_message", "encode_message", "run_engine_process"]
