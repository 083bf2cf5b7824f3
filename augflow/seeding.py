"""Seed derivation: every random draw comes from (pipeline seed, epoch, sample index).

Never global RNG state: the seed of a call is a pure function of those numbers, so the output of
sample i in epoch e is the same in any process, thread or worker count. Philox is counter-based
and cheap to construct, which matters at one generator per sample.
"""

from __future__ import annotations

import zlib
from typing import Any, Mapping

import numpy as np

# A fixed tag keeps augflow's streams apart from other users of the same integers.
_AUGFLOW_TAG = 0xA06F10


def call_seed(pipeline_seed: int, epoch: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of one call: sample `index` in `epoch` of a pipeline seeded `pipeline_seed`."""
    return np.random.SeedSequence([_AUGFLOW_TAG, int(pipeline_seed), int(epoch), int(index)])


def explicit_seed(seed: int) -> np.random.SeedSequence:
    """The seed sequence for a caller-given seed (`pipe(sample, seed=1234)`)."""
    return np.random.SeedSequence([_AUGFLOW_TAG, int(seed)])


def content_key(fields: Mapping[str, Any]) -> int:
    """A cheap, process-independent fingerprint of a sample's array fields.

    Used when a caller gives neither seed nor index (a pipeline dropped into an existing
    `Dataset.__getitem__`): the same sample then gets the same augmentation in any worker.
    """
    crc = 0
    for name in sorted(fields):
        value = fields[name]
        crc = zlib.crc32(name.encode(), crc)
        if isinstance(value, np.ndarray):
            arr = value if value.flags.c_contiguous else np.ascontiguousarray(value)
            crc = zlib.crc32(memoryview(arr).cast("B"), crc)
        elif isinstance(value, (int, float, str, bytes)):
            crc = zlib.crc32(repr(value).encode(), crc)
    return crc


def generator(seed_seq: np.random.SeedSequence) -> np.random.Generator:
    """A numpy Generator on Philox for the given seed sequence."""
    return np.random.Generator(np.random.Philox(seed_seq))


def seed_int(seed_seq: np.random.SeedSequence) -> int:
    """A 63-bit integer summary of a seed sequence (for torch generators, manifests)."""
    return int(seed_seq.generate_state(2, np.uint32).view(np.uint64)[0] >> np.uint64(1))
