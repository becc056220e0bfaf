"""The `bytes` encoding's response (api/responses.py): raw body plus a JSON `metadata` header that locates each item."""

from __future__ import annotations

import json

import numpy as np
import torch

from api.responses import octet_stream
from api.schemas.common import UsageInfo


def test_body_and_metadata_header_describe_each_tensor() -> None:
    outputs = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0], [4.0], [5.0]])]
    response = octet_stream(outputs, "float32", "little", id_="embd-1", model="m", usage=UsageInfo(7, 7))
    assert response.media_type == "application/octet-stream"
    meta = json.loads(response.headers["metadata"])
    assert (meta["id"], meta["model"], meta["usage"]) == ("embd-1", "m", {"prompt_tokens": 7, "total_tokens": 7})
    body = response.content
    assert isinstance(body, bytes) and len(body) == 5 * 4
    decoded = [np.frombuffer(body[d["start"] : d["end"]], "<f4").reshape(d["shape"]).tolist() for d in meta["data"]]
    assert decoded == [[1.0, 2.0], [[3.0], [4.0], [5.0]]]
