"""Which Ray cluster a process joins, checked before it joins: a cluster that is not there is a clear error.

Ray's own `ray.init` retries a dead GCS address for minutes and then raises a bare `ConnectionError` (`retrieval
embed`), or keeps a starting server unready with no error logged (`serve --ray auto`). That happens most often
after a cluster died without `ray stop`: Ray's record of "the cluster of this machine"
(`<temp>/ray/ray_current_cluster`) still names it. So every address is probed first (a TCP connection to its
GCS, or to its Ray Client server for `ray://`), and:

* `serve --ray ADDRESS` / `embed --address ADDRESS` / `RAY_ADDRESS`: it must answer, else
  `RayClusterUnavailableError` naming it;
* `serve --ray auto`: `RAY_ADDRESS`, else the recorded cluster of this machine, which must answer (a stale record
  is the same clear error, saying how to clear it); with neither, Ray starts a local cluster;
* `embed` without `--address`: the recorded cluster when it answers, else a local cluster of its own.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from retrieval.errors import RetrievalError

__all__ = ["LOCAL", "RayClusterUnavailableError", "embed_address", "recorded_address", "serve_address"]

LOCAL = "local"  # `ray.init(address="local")`: start a new local cluster, whatever is recorded
_PROBE_S = 3.0  # how long a probe waits for the cluster's port
_CLEAR = (
    "start it again (`ray start --head`), name a live cluster (--ray ADDRESS / --address ADDRESS / RAY_ADDRESS), "
    "or remove the stale record ({record}); `ray stop` would clear it too but stops every Ray process on this machine"
)


class RayClusterUnavailableError(RetrievalError):
    """No Ray cluster answers at the address this process was to join."""

    def __init__(self, address: str, source: str, record: str) -> None:
        super().__init__(
            f"no Ray cluster answers at {address} ({source}): {_CLEAR.format(record=record)}",
            param="ray",
            received=address,
        )


def _record_file() -> Path:
    """Ray's record of the cluster last started on this machine (`ray start` writes it)."""
    from ray._common.utils import get_ray_address_file

    return Path(get_ray_address_file(None))


def recorded_address() -> tuple[str, str] | None:
    """(address, where it comes from) of the cluster this machine names: `RAY_ADDRESS`, else Ray's record."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env not in ("auto", LOCAL):
        return env, "RAY_ADDRESS"
    record = _record_file()
    try:
        text = record.read_text().strip()
    except OSError:
        return None
    return (text, f"recorded in {record}") if text else None


def answers(address: str, timeout_s: float = _PROBE_S) -> bool:
    """Whether something listens at the cluster address (`host:port`, or `ray://host:port` of a Ray Client).

    >>> answers("127.0.0.1:1", 0.5), answers("not an address")
    (False, False)
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def _checked(address: str, source: str) -> str:
    if not answers(address):
        raise RayClusterUnavailableError(address, source, str(_record_file()))
    return address


def serve_address(requested: str) -> str | None:
    """What `serve --ray REQUESTED` joins: a checked address, or None (auto, nothing recorded: Ray starts a local
    cluster). RayClusterUnavailableError when the address named or recorded does not answer."""
    if requested != "auto":
        return _checked(requested, "--ray")
    found = recorded_address()
    return None if found is None else _checked(*found)


def embed_address(requested: str | None) -> str:
    """What `embed [--address REQUESTED]` joins: a checked address, or `LOCAL` (no address given and no live
    cluster recorded: a cluster of its own). RayClusterUnavailableError when a named address does not answer."""
    if requested:
        return _checked(requested, "--address")
    found = recorded_address()
    if found is None:
        return LOCAL
    address, source = found
    if source == "RAY_ADDRESS":
        return _checked(address, source)
    return address if answers(address) else LOCAL
