"""Drift signal of the compressed multi-vector index: has the data moved away from what its codes were trained on?

Codes (an IVF coarse centroid plus a product-quantised residual per token vector) are trained once, on a sample.
When later documents come from another distribution (a new language, another model version, page images after
text) their vectors sit far from every centroid and their residuals outside the PQ codebooks: the reconstruction
error grows and so does the candidate stage's miss rate. The meter compares the mean squared reconstruction
error ``|x - decode(encode(x))|^2`` of a sample of every add since training with the same error measured on
held-out vectors right after training; ``ratio() > drift_ratio`` (``MultiVectorConfig``) asks for a retrain.
Growth is the other signal: ``tokens > retrain_growth * trained_on`` (an IVF sized for far fewer vectors has
lists too long to probe quickly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["DriftMeter", "RetrainReason", "retrain_reason"]

RetrainReason = str  # "growth" | "drift"
_MIN_OBSERVED = 512  # sampled vectors before a drift verdict (the mean of fewer is noise)


@dataclass
class DriftMeter:
    """Quantisation error of vectors added since training, against the error at training time.

    >>> m = DriftMeter(baseline=0.1)
    >>> m.observe(np.full(600, 0.3, np.float32)); round(m.ratio(), 3)
    3.0
    >>> m.drifted(1.5), DriftMeter(baseline=0.1).drifted(1.5)
    (True, False)
    """

    baseline: float  # mean squared reconstruction error per vector on held-out vectors at training time
    observed: int = 0  # vectors measured since training
    error_sum: float = 0.0  # sum of their squared reconstruction errors

    def observe(self, errors: npt.NDArray[np.float32]) -> None:
        """Add the squared reconstruction errors (float32 (n,)) of a sample of newly added vectors."""
        self.observed += int(errors.shape[0])
        self.error_sum += float(np.sum(errors, dtype=np.float64))

    def ratio(self) -> float:
        """Mean error since training over the baseline (1.0 before anything was observed)."""
        if self.observed == 0 or self.baseline <= 0.0:
            return 1.0
        return self.error_sum / self.observed / self.baseline

    def drifted(self, threshold: float) -> bool:
        """Enough vectors were observed and their error exceeds ``threshold`` times the baseline."""
        return self.observed >= _MIN_OBSERVED and self.ratio() > threshold


def retrain_reason(
    meter: DriftMeter, tokens: int, trained_on: int, growth: float, threshold: float
) -> RetrainReason | None:
    """Why the codes should be retrained now (``"growth"``, ``"drift"``), or None.

    >>> retrain_reason(DriftMeter(0.1), 900, 100, 8.0, 1.5), retrain_reason(DriftMeter(0.1), 700, 100, 8.0, 1.5)
    ('growth', None)
    """
    if tokens > growth * max(1, trained_on):
        return "growth"
    return "drift" if meter.drifted(threshold) else None
