"""Pure tensor functions and small heads: pooling, normalisation, activations, Matryoshka, MaxSim.

Imports torch (and numpy) only; never encoder, index, retrieval or api.
"""

from poolers.activation import ActivationName, apply_activation, classify_activation
from poolers.matryoshka import MatryoshkaError, truncate_and_normalize, validate_dimensions
from poolers.pooling import PoolingType, SequencePooling, l2_normalize, pool, pool_all

__all__ = [
    "ActivationName",
    "MatryoshkaError",
    "PoolingType",
    "SequencePooling",
    "apply_activation",
    "classify_activation",
    "l2_normalize",
    "pool",
    "pool_all",
    "truncate_and_normalize",
    "validate_dimensions",
]
