"""`Engine.fingerprint`: what a model's vectors depend on, stable for the same files and changed by any weight."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec

from encoder import Engine, ModelSpec
from encoder.fingerprint import weights_digest


def test_the_digest_covers_weight_files_only(tiny_store: Callable[[str], Path], tmp_path: Path) -> None:
    src = tiny_store("bert_st_mean")
    copy = Path(shutil.copytree(src, tmp_path / "copy"))
    assert weights_digest(copy) == weights_digest(src)
    (copy / "README.md").write_text("a note")  # not a weight file
    assert weights_digest(copy) == weights_digest(src)
    weights = next(copy.rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert weights_digest(copy) != weights_digest(src)


def test_fingerprint_fields_and_comparison(tiny_store: Callable[[str], Path]) -> None:
    a = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="a"))
    b = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="b"))
    try:
        fa, fb = a.fingerprint("embed"), b.fingerprint("embed")
        assert (fa.dimensions, fa.pooling, fa.task, fa.weights_sha256) == (
            a.dimensions("embed"),
            "MEAN",
            "embed",
            a.weights_sha256,
        )
        assert fa != fb and fa.same_vectors(fb)  # another served name, the same vectors
        assert not fa.same_vectors(msgspec.structs.replace(fb, normalize=not fb.normalize))
        assert not fa.same_vectors(msgspec.structs.replace(fb, weights_sha256="0" * 64))
    finally:
        a.close()
        b.close()
