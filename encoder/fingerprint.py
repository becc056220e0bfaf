"""What a model's outputs depend on, as one stable record: a digest of its weight files and the settings that
shape its vectors. Two engines with equal fingerprints make the same vectors from the same text; vectors made
elsewhere can be checked against a served model without running it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec

__all__ = ["WEIGHT_SUFFIXES", "ModelFingerprint", "weights_digest"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")  # files that hold parameters (heads included)
_BLOCK = 1 << 20  # bytes read at a time


class ModelFingerprint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which model made one representation, and how (what `Engine.fingerprint` reports)."""

    model: str  # served model name (informational: the same weights may be served under another name)
    weights_sha256: str  # `weights_digest` of the checkpoint folder
    revision: str | None  # hub revision the spec asked for, if any
    task: str  # pooling task of the representation: embed, token_embed or the BGE-M3 pass
    dimensions: int  # width of one output vector of `task`
    pooling: str  # sequence pooling (CLS, MEAN, LAST, ...)
    normalize: bool  # whether outputs are L2-normalised
    prompt: str | None  # document-side prompt name applied before encoding, if any
    max_model_len: int  # tokens the model reads per input (longer text is cut)

    def same_vectors(self, other: ModelFingerprint) -> bool:
        """Whether `other` makes the same vectors: every field but the served name and the revision label."""
        mine = msgspec.structs.replace(self, model="", revision=None)
        return mine == msgspec.structs.replace(other, model="", revision=None)


def weights_digest(root: Path) -> str:
    """sha256 hex over every weight file under `root` (sorted relative paths, each path then its bytes).

    Configuration and tokenizer files are left out: they are compared field by field (pooling, prompts,
    dimensions) where they matter. A folder without weight files digests to the sha256 of nothing.
    """
    h = hashlib.sha256()
    files = sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
    return h.hexdigest()
