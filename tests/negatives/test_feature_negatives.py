"""Feature-level negatives: MoCHi, feature transformation, InfoNCE and the memory queue.

Definitions are checked on small hand-computable tensors; statistical claims on random features.
"""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from augflow.negatives import MemoryQueue, feature_transform, info_nce, mochi, plot_scores, scores
from augflow.negatives.scores import histograms


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def hand():
    """q = e1; queue rows whose similarity to q is known: 0.9, -1, 0.5, 0.1, 0.7 (after normalising)."""
    q = unit([1.0, 0.0])
    sims = [0.9, -1.0, 0.5, 0.1, 0.7]
    queue = torch.tensor([[s, math.sqrt(1 - s * s)] for s in sims])
    return q, queue


# ---- MoCHi ------------------------------------------------------------------------------
def test_mochi_keeps_the_n_hardest_negatives_hardest_first(hand):
    q, queue = hand
    res = mochi(q, queue, n_hard=3, s=4, s_prime=2, generator=gen(), return_info=True)
    assert res.hard_index.tolist() == [[0, 4, 2]]          # similarities 0.9, 0.7, 0.5


def test_mochi_mixes_are_normalised_convex_mixes_of_two_distinct_hard_negatives(hand):
    q, queue = hand
    res = mochi(q, queue, n_hard=3, s=50, s_prime=0, generator=gen(), return_info=True)
    hard = queue[res.hard_index[0]]
    i, j = res.pair_index[0, :, 0], res.pair_index[0, :, 1]
    assert bool((i != j).all())
    a = res.alpha[0][:, None]
    assert float(res.alpha.min()) >= 0.0 and float(res.alpha.max()) < 1.0
    expected = F.normalize(a * hard[i] + (1 - a) * hard[j], dim=1)
    torch.testing.assert_close(res.negatives[0], expected)
    torch.testing.assert_close(res.negatives.norm(dim=2), torch.ones(1, 50))


def test_mochi_query_mixes_give_the_query_less_than_half(hand):
    q, queue = hand
    res = mochi(q, queue, n_hard=3, s=0, s_prime=200, generator=gen(1), return_info=True)
    assert float(res.beta.min()) >= 0.0 and float(res.beta.max()) < 0.5
    hard = queue[res.hard_index[0]]
    b = res.beta[0][:, None]
    expected = F.normalize(b * q + (1 - b) * hard[res.query_index[0]], dim=1)
    torch.testing.assert_close(res.negatives[0], expected)


def test_mochi_passes_no_gradient_through_the_query(hand):
    q, queue = hand
    q = q.clone().requires_grad_(True)
    neg = mochi(q, queue, n_hard=3, s=4, s_prime=4, generator=gen())
    assert not neg.requires_grad and neg.grad_fn is None
    loss = info_nce(q, q.detach(), [queue, neg], temperature=0.5)
    loss.backward()
    # the gradient equals the one with the synthetic negatives given as constants
    q2 = q.detach().clone().requires_grad_(True)
    info_nce(q2, q.detach(), [queue, neg.clone()], temperature=0.5).backward()
    torch.testing.assert_close(q.grad, q2.grad)


def test_mochi_negatives_are_harder_than_the_queue_average():
    g = gen(3)
    q = F.normalize(torch.randn(32, 16, generator=g), dim=1)
    queue = F.normalize(torch.randn(1024, 16, generator=g), dim=1)
    neg = mochi(q, queue, n_hard=64, s=64, s_prime=16, generator=gen(4))
    synthetic = torch.einsum("bd,bmd->bm", q, neg).mean()
    assert float(synthetic) > float((q @ queue.T).mean()) + 0.2


def test_mochi_is_reproducible_with_a_generator():
    g = gen(5)
    q = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(64, 8, generator=g), dim=1)
    a = mochi(q, queue, n_hard=16, s=8, s_prime=4, generator=gen(9))
    b = mochi(q, queue, n_hard=16, s=8, s_prime=4, generator=gen(9))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---- feature transformation -------------------------------------------------------------
def test_extrapolation_pushes_the_views_apart_along_their_difference():
    zq, zk = unit([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]), unit([0.6, 0.8, 0.0], [0.0, 0.6, 0.8])
    q2, k2, lam = feature_transform.extrapolate_positives(zq, zk, alpha=2.0, per="sample", generator=gen(),
                                                          return_lambda=True)
    assert bool((lam > 1).all()) and bool((lam < 2).all())
    torch.testing.assert_close(q2 - k2, (2 * lam - 1) * (zq - zk))   # farther apart...
    torch.testing.assert_close(q2 + k2, zq + zk)                     # ...around the same midpoint
    n2 = feature_transform.extrapolate_positives(zq, zk, per="sample", generator=gen(), normalize=True)
    assert bool(((n2[0] * n2[1]).sum(1) < (zq * zk).sum(1)).all())  # harder positives
    torch.testing.assert_close(n2[0].norm(dim=1), torch.ones(2))


def test_extrapolation_detaches_the_key():
    zq = unit([1.0, 0.0], [0.0, 1.0]).requires_grad_(True)
    zk = unit([0.6, 0.8], [0.8, 0.6]).requires_grad_(True)
    q2, k2 = feature_transform.extrapolate_positives(zq, zk, generator=gen())
    (q2 * k2).sum().backward()
    assert zq.grad is not None and zk.grad is None


def test_lambda_granularity_follows_per():
    z = F.normalize(torch.randn(5, 4, generator=gen()), dim=1)
    shapes = {per: feature_transform.extrapolate_positives(z, z.flip(0), per=per, generator=gen(),
                                                           return_lambda=True)[2].shape
              for per in ("batch", "sample", "dim")}
    assert shapes == {"batch": (1, 1), "sample": (5, 1), "dim": (5, 4)}


def test_interpolation_mixes_each_negative_with_a_random_partner():
    queue = F.normalize(torch.randn(64, 8, generator=gen(2)), dim=1)
    out, lam, perm = feature_transform.interpolate_negatives(queue, alpha=1.6, per="sample", generator=gen(),
                                                             return_details=True)
    assert bool((lam > 0).all()) and bool((lam < 1).all())
    assert sorted(perm.tolist()) == list(range(64))
    torch.testing.assert_close(out, lam * queue + (1 - lam) * queue[perm])


def test_beta_draws_match_the_beta_distribution_mean_and_variance():
    x = feature_transform.beta_sample(2.0, (20000,), generator=gen())
    assert abs(float(x.mean()) - 0.5) < 0.01
    assert abs(float(x.var()) - 1 / 20) < 0.005                        # a^2 / ((2a)^2 (2a + 1)) for a = 2


# ---- InfoNCE ----------------------------------------------------------------------------
def manual_info_nce(q, k, negs, t, decoupled=False):
    total = 0.0
    for i in range(q.shape[0]):
        pos = float(q[i] @ k[i]) / t
        neg = [float(q[i] @ n) / t for n in negs[i]]
        denom = sum(math.exp(v) for v in neg) + (0.0 if decoupled else math.exp(pos))
        total += -pos + math.log(denom)
    return total / q.shape[0]


def test_info_nce_equals_the_formula():
    q, k = unit([1.0, 0.0], [0.0, 1.0]), unit([0.8, 0.6], [0.6, 0.8])
    queue = unit([1.0, 1.0], [-1.0, 0.0], [0.0, -1.0])
    got = info_nce(q, k, queue, temperature=0.5)
    assert float(got) == pytest.approx(manual_info_nce(q, k, [queue, queue], 0.5), rel=1e-6)


def test_decoupled_drops_exactly_the_positive_from_the_denominator():
    q, k = unit([1.0, 0.0], [0.0, 1.0]), unit([0.8, 0.6], [0.6, 0.8])
    queue = unit([1.0, 1.0], [-1.0, 0.0], [0.0, -1.0])
    std = info_nce(q, k, queue, 0.5, reduction="none")
    dcl = info_nce(q, k, queue, 0.5, decoupled=True, reduction="none")
    assert float(dcl.mean()) == pytest.approx(manual_info_nce(q, k, [queue, queue], 0.5, decoupled=True), rel=1e-6)
    pos = (q * k).sum(1) / 0.5
    neg_sum = torch.exp(q @ queue.T / 0.5).sum(1)
    torch.testing.assert_close(std - dcl, torch.log1p(torch.exp(pos) / neg_sum))   # > 0: DCL is lower


def test_info_nce_takes_per_query_and_listed_negatives():
    q, k = unit([1.0, 0.0], [0.0, 1.0]), unit([0.8, 0.6], [0.6, 0.8])
    shared = unit([1.0, 1.0])
    per_query = torch.stack([unit([0.0, 1.0], [-1.0, 0.0]), unit([1.0, 0.0], [1.0, -1.0])])
    got = info_nce(q, k, [shared, per_query], temperature=0.2)
    negs = [torch.cat([shared, per_query[i]]) for i in range(2)]
    assert float(got) == pytest.approx(manual_info_nce(q, k, negs, 0.2), rel=1e-6)


def test_info_nce_in_batch_negatives_are_the_other_keys():
    q, k = unit([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]), unit([0.8, 0.6], [0.6, 0.8], [0.0, 1.0])
    negs = [torch.stack([k[j] for j in range(3) if j != i]) for i in range(3)]
    assert float(info_nce(q, k, None, 0.3)) == pytest.approx(manual_info_nce(q, k, negs, 0.3), rel=1e-6)


# ---- memory queue -----------------------------------------------------------------------
def test_queue_is_first_in_first_out():
    keys = torch.arange(14, dtype=torch.float32)[:, None].repeat(1, 2)
    queue = MemoryQueue(size=5, dim=2)
    queue.enqueue(keys[:3])
    assert queue.get()[:, 0].tolist() == [0, 1, 2]
    queue.enqueue(keys[3:7])                                   # 7 keys into 5 slots: 0 and 1 leave
    assert queue.get()[:, 0].tolist() == [2, 3, 4, 5, 6]
    assert queue.dequeue(2)[:, 0].tolist() == [2, 3]
    queue.enqueue(keys[7:9])
    assert queue.get()[:, 0].tolist() == [4, 5, 6, 7, 8] and len(queue) == 5
    queue.enqueue(keys[:14])                                   # more than the size: only the newest stay
    assert queue.get()[:, 0].tolist() == [9, 10, 11, 12, 13]


def test_queue_stores_detached_keys_and_round_trips_its_state():
    keys = torch.randn(3, 4, requires_grad=True)
    queue = MemoryQueue(size=4, dim=4)
    queue.enqueue(keys * 2)
    assert not queue.get().requires_grad
    other = MemoryQueue(size=4, dim=4)
    other.load_state_dict(queue.state_dict())
    torch.testing.assert_close(other.get(), queue.get())


def test_queue_random_init_is_full_of_unit_vectors():
    queue = MemoryQueue(size=16, dim=8, init="random", generator=gen())
    assert len(queue) == 16
    torch.testing.assert_close(queue.get().norm(dim=1), torch.ones(16))


# ---- score pictures ---------------------------------------------------------------------
def test_plot_scores_draws_one_row_per_snapshot(tmp_path):
    g = gen(7)
    q = F.normalize(torch.randn(16, 8, generator=g), dim=1)
    k = F.normalize(q + 0.3 * torch.randn(16, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(100, 8, generator=g), dim=1)
    pos, neg = scores(q, k, queue)
    assert pos.shape == (16,) and neg.shape == (16, 100)
    assert histograms(neg).sum() == pytest.approx(1.0)
    img = plot_scores([pos, pos * 0.5], [neg, neg], tmp_path / "scores.png", labels=["epoch 1", "epoch 2"],
                      row_height=100)
    assert (tmp_path / "scores.png").exists() and img.size[1] == 22 + 24 + 2 * 100
    pixels = np.asarray(img)
    assert (np.abs(pixels.astype(int) - [230, 120, 20]).sum(axis=2) == 0).any()   # positive bars drawn
