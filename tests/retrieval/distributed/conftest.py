"""One local Ray instance for the whole pytest session (2 CPUs, a small object store, a private temp folder
removed at the end): starting Ray costs seconds, so every test of the distributed package shares it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
import ray


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address of the session's Ray instance (started here, shut down and deleted at the end)."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 1024**2,
        _temp_dir=temp,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
