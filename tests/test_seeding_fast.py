"""seeding.draw_seed's fast form gives exactly the seeds `rng.integers(2**63)` gives."""

import numpy as np

from augflow import seeding


def test_draw_seed_equals_integers_2_63_under_mixed_draws():
    for seed in range(20):
        fast, ref = (np.random.Generator(np.random.Philox(seed)) for _ in range(2))
        for k in range(300):
            for g in (fast, ref):   # the same other draws on both, as ops make between seeds
                if k % 3 == 0:
                    g.random()
                if k % 5 == 0:
                    g.uniform(0.2, 0.7, size=3)
                if k % 7 == 0:
                    g.integers(0, 10)
                if k % 11 == 0:
                    g.random(dtype=np.float32)   # a 32-bit draw that buffers half a word
            assert seeding.draw_seed(fast) == int(ref.integers(2**63))
