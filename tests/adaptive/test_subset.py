"""AugmentSubset: a facility-location coreset of gradient embeddings is the augmented subset."""

import json

import numpy as np
import torch

from augflow import Pipeline
from augflow.adaptive import AugmentSubset, last_layer_gradients
from augflow.adaptive.subset import facility_location

PIPE = {"augflow": 1, "seed": 1, "sample": [{"rotate": {"limit": [-30, 30], "p": 1.0}}, {"to_tensor": {}}]}


def test_facility_location_picks_one_per_cluster():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    x = np.concatenate([c + 0.1 * rng.standard_normal((25, 2)) for c in centres])
    chosen, weights = facility_location(x, 4)
    assert sorted(chosen // 25) == [0, 1, 2, 3]        # a representative of every cluster
    assert weights.tolist() == [25.0, 25.0, 25.0, 25.0]  # each stands for its cluster


def test_last_layer_gradients_match_autograd():
    torch.manual_seed(0)
    h = torch.randn(5, 3)
    head = torch.nn.Linear(3, 4, bias=False)
    y = torch.tensor([0, 1, 2, 3, 0])
    emb = last_layer_gradients(head(h), y, h)
    for k in range(5):
        head.zero_grad()
        torch.nn.functional.cross_entropy(head(h[k:k + 1]), y[k:k + 1]).backward()
        assert torch.allclose(emb[k], head.weight.grad.reshape(-1), atol=1e-6)


def test_only_the_selected_subset_is_augmented(astronaut):
    img = np.ascontiguousarray(astronaut[::8, ::8])
    records = [{"image": img, "label": i % 2} for i in range(20)]
    policy = AugmentSubset(fraction=0.3, every=1)
    loader = Pipeline.from_dict(PIPE).compile(records, batch_size=5, policy=policy, return_provenance=True)
    # gradient embeddings: two groups of samples per class, far apart
    feats = {i: np.array([float(i % 4 >= 2) * 10, float(i % 2)]) for i in range(20)}
    for e in range(2):
        loader.set_epoch(e)
        applied = {}
        for batch in loader:
            for i, prov in zip(batch["_index"].tolist(), batch["_provenance"]):
                applied[i] = [p["op"] for p in json.loads(prov)[1:]]
            loader.feedback(batch, features=torch.tensor(np.stack([feats[i] for i in batch["_index"].tolist()])))
    augmented = {i for i, ops in applied.items() if "rotate" in ops}
    assert augmented == set(policy.subset) and len(augmented) == 6     # 30% of 20, chosen per class
    assert all("to_tensor" in ops for ops in applied.values())          # structural ops still run for all
    assert {i % 4 >= 2 for i in augmented} == {True, False}             # both gradient groups represented
    report = policy.report()
    assert report["selections"][0]["size"] == 6 and 0.6 < report["augmentation_saved"] < 0.8


def test_greedy_facility_location_is_near_the_brute_force_optimum():
    import itertools

    x = np.random.default_rng(3).standard_normal((9, 3))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    sim = d.max() - d
    value = lambda s: sim[:, list(s)].max(1).sum()   # noqa: E731
    best = max(value(s) for s in itertools.combinations(range(9), 3))
    chosen, _ = facility_location(x, 3)
    assert value(chosen) >= (1 - 1 / np.e) * best and value(chosen) >= 0.95 * best
