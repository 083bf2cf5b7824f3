"""NGAMESampler on scikit-learn digits embeddings: permutations, reproducibility, hard in-batch negatives."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from augflow.negatives import NGAMESampler, mean_in_batch_similarity
from augflow.negatives.ngame import balanced_clusters

pytest.importorskip("faiss", reason="NGAME clusters with faiss (pip install faiss-cpu)")


def _sampler(emb, **kw):
    return NGAMESampler(embeddings=emb, cluster_size=kw.pop("cluster_size", 8), batch_size=kw.pop("batch_size", 64),
                        seed=kw.pop("seed", 0), **kw)


def test_each_epoch_is_a_permutation_of_the_dataset(digits_embeddings):
    emb, _ = digits_embeddings
    sampler = _sampler(emb, refresh_every=2)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        flat = [i for batch in sampler for i in batch]
        assert sorted(flat) == list(range(len(emb)))
        assert all(len(b) <= 64 for b in sampler)


def test_batches_are_reproducible_from_seed_and_epoch(digits_embeddings):
    emb, _ = digits_embeddings
    a, b = _sampler(emb), _sampler(emb)
    assert a.batches(3) == b.batches(3)                      # a fresh sampler, same (seed, epoch)
    assert a.batches(3) != a.batches(4)                      # another epoch: another order
    assert _sampler(emb, seed=1).batches(3) != a.batches(3)  # another seed


def test_in_batch_negatives_are_more_similar_than_in_random_batches(digits_embeddings):
    emb, labels = digits_embeddings
    sampler = _sampler(emb)
    rng = np.random.default_rng(0)
    random_sims = []
    for _ in range(5):
        perm = rng.permutation(len(emb))
        random_sims.append(mean_in_batch_similarity(emb, [perm[i:i + 64] for i in range(0, len(emb), 64)]))
    ngame_sim = mean_in_batch_similarity(emb, sampler.batches(0))
    assert ngame_sim > max(random_sims) + 0.05
    # the clusters are near neighbours: mostly one digit each
    purity = np.mean([np.bincount(labels[c]).max() / len(c) for c in sampler.clusters(0)])
    assert purity > 0.8


def test_batches_are_made_of_whole_small_clusters(digits_embeddings):
    emb, _ = digits_embeddings
    sampler = _sampler(emb, cluster_size=8)
    clusters = sampler.clusters(0)
    assert max(len(c) for c in clusters) <= 8
    assert len(clusters) == -(-len(emb) // 8)
    where = {int(i): ci for ci, c in enumerate(clusters) for i in c}
    for batch in sampler.batches(0):
        for ci in {where[i] for i in batch}:
            assert set(clusters[ci].tolist()) <= set(batch)


def test_clusters_are_rebuilt_every_refresh_every_epochs_from_embed_fn(digits_embeddings):
    emb, _ = digits_embeddings
    calls = []

    def embed(epoch):          # the current encoder: here, embeddings that drift with the epoch
        calls.append(epoch)
        return emb + 0.5 * epoch * np.roll(emb, 1, axis=1)

    sampler = NGAMESampler(embed, cluster_size=8, batch_size=64, refresh_every=2)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        list(sampler)
    assert calls == [0, 2, 4]


def test_warmup_epochs_use_random_batches_of_full_size(digits_embeddings):
    emb, _ = digits_embeddings
    sampler = _sampler(emb, warmup_epochs=1, drop_last=True)
    warm = sampler.batches(0)
    assert all(len(b) == 64 for b in warm) and len(warm) == len(emb) // 64
    assert mean_in_batch_similarity(emb, warm) < mean_in_batch_similarity(emb, sampler.batches(1))


def test_drives_a_dataloader_as_its_batch_sampler(digits_embeddings):
    emb, _ = digits_embeddings
    dataset = TensorDataset(torch.arange(len(emb)))
    sampler = _sampler(emb)
    loader = DataLoader(dataset, batch_sampler=sampler)
    sampler.set_epoch(2)
    got = [b[0].tolist() for b in loader]
    assert got == sampler.batches(2) and len(loader) == len(got)


def test_balanced_clusters_cover_every_point_once():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(203, 5)).astype(np.float32)
    groups = balanced_clusters(x, 10, seed=3, metric="l2")
    assert sorted(np.concatenate(groups).tolist()) == list(range(203))
    assert max(len(g) for g in groups) <= 10


def test_embedding_rows_must_match_the_dataset(digits_embeddings):
    emb, _ = digits_embeddings
    sampler = NGAMESampler(lambda: emb[:100], cluster_size=8).configure(num_samples=len(emb), batch_size=64)
    with pytest.raises(ValueError, match="returned 100 rows for a dataset of 1797 items"):
        sampler.batches(0)
    with pytest.raises(ValueError, match="exactly one of embed_fn"):
        NGAMESampler()


def test_clusters_do_not_depend_on_the_faiss_thread_count(digits_embeddings):
    import faiss

    emb, _ = digits_embeddings
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        one = balanced_clusters(emb, 8, seed=5)
        faiss.omp_set_num_threads(2)
        two = balanced_clusters(emb, 8, seed=5)
    finally:
        faiss.omp_set_num_threads(before)
    assert len(one) == len(two) and all(np.array_equal(a, b) for a, b in zip(one, two))
