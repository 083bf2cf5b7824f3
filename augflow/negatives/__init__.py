"""Negative-sample generators.

Feature-level (plain torch functions on L2-normalised features, for any training loop):
`mochi` (hard negative mixing), `feature_transform` (positive extrapolation, negative
interpolation), `info_nce` (with the decoupled variant), `MemoryQueue` (MoCo-style FIFO of keys)
and `plot_scores` (the pos/neg score histograms people tune them with).

Sample- and batch-level: `NGAMESampler` (batches of whole clusters of near neighbours), the ops
`noise_negatives`, `text_negatives`, `image_negatives` (registered with the op families), and
`collate_fn` / `collate_negatives` (module `collate`) for the `negatives` field.
"""

from augflow.negatives import feature_transform
from augflow.negatives.feature import MemoryQueue, info_nce, negative_logits
from augflow.negatives.hard_mixing import MochiResult, mochi
from augflow.negatives.scores import histograms, plot_scores, scores
from augflow.negatives.collate import collate_fn, collate_negatives
from augflow.negatives.ngame import NGAMESampler, mean_in_batch_similarity

__all__ = ["mochi", "MochiResult", "feature_transform", "info_nce", "negative_logits", "MemoryQueue",
           "plot_scores", "scores", "histograms", "NGAMESampler", "mean_in_batch_similarity", "collate_fn",
           "collate_negatives"]
