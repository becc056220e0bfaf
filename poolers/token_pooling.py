"""Token pooling: shrink a document's token (or image patch) vectors by hierarchical clustering.

As colpali-engine's ``HierarchicalTokenPooler``: Ward linkage over the cosine distances between a document's
vectors, cut into ``ceil(m / pool_factor)`` clusters (``fcluster``, ``maxclust``); each cluster becomes the
mean of its vectors, L2-normalised. MaxSim over the pooled vectors approximates MaxSim over the originals
while storing about ``1 / pool_factor`` of the vectors.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

__all__ = ["pool_tokens", "pooled_length"]

F32 = npt.NDArray[np.float32]


def pooled_length(m: int, pool_factor: int) -> int:
    """Vectors kept for a document of ``m`` vectors: ``ceil(m / pool_factor)`` (at least 1 when m > 0).

    >>> pooled_length(768, 3), pooled_length(5, 2), pooled_length(1, 4)
    (256, 3, 1)
    """
    return math.ceil(m / pool_factor)


def pool_tokens(vectors: npt.NDArray[np.floating], pool_factor: int) -> F32:
    """Pool float (m, d) vectors into float32 (k, d), k <= ceil(m / pool_factor), rows L2-normalised.

    ``pool_factor == 1`` (or m <= 1) returns the vectors unchanged (as float32). Clusters are numbered by
    ``fcluster`` (1..k) and returned in that order; ``fcluster`` may return fewer than the asked number
    of clusters when vectors coincide.

    >>> v = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    >>> pool_tokens(v, 2).round(2)
    array([[1.  , 0.05],
           [0.05, 1.  ]], dtype=float32)
    """
    x = np.asarray(vectors, np.float32)
    m = x.shape[0]
    if pool_factor <= 1 or m <= 1:
        return x
    dist = np.clip(pdist(x.astype(np.float64), "cosine"), 0.0, None)
    labels = fcluster(linkage(dist, method="ward"), t=pooled_length(m, pool_factor), criterion="maxclust")
    k = int(labels.max())
    sums = np.zeros((k, x.shape[1]), np.float64)
    np.add.at(sums, labels - 1, x)
    counts = np.bincount(labels - 1, minlength=k)[:, None]
    means = sums / counts
    return (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)
