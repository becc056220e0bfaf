"""Pure tensor functions and small heads: pooling, normalisation, activations, Matryoshka, MaxSim.

Imports torch (and numpy) only; never encoder, index, retrieval or api.
"""

from poolers.activation import ActivationName, apply_activation, classify_activation
from poolers.colbert import expand_query, insert_marker, skiplist_keep, token_vectors
from poolers.matryoshka import MatryoshkaError, truncate_and_normalize, validate_dimensions
from poolers.maxsim import MAXSIM_FUNCTIONS, MaxSimReduction, maxsim, maxsim_mean, maxsim_packed
from poolers.pooling import PoolingType, SequencePooling, l2_normalize, pool, pool_all
from poolers.sparse import lexical_score, lexical_weights, sparse_to_arrays, token_weights

__all__ = [
    "MAXSIM_FUNCTIONS",
    "ActivationName",
    "MatryoshkaError",
    "MaxSimReduction",
    "PoolingType",
    "SequencePooling",
    "apply_activation",
    "classify_activation",
    "expand_query",
    "insert_marker",
    "l2_normalize",
    "lexical_score",
    "lexical_weights",
    "maxsim",
    "maxsim_mean",
    "maxsim_packed",
    "pool",
    "pool_all",
    "skiplist_keep",
    "sparse_to_arrays",
    "token_vectors",
    "token_weights",
    "truncate_and_normalize",
    "validate_dimensions",
]
