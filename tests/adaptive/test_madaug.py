"""MADAug: decisions from the policy network, its bi-level update, resume."""

import json

import numpy as np
import torch

from augflow import Pipeline
from augflow.adaptive import MADAug

PIPE = {"augflow": 1, "seed": 2, "sample": [{"rotate": {"limit": [-30, 30], "p": 1.0}},
                                            {"random_brightness_contrast": {"p": 1.0}}, {"to_tensor": {}}]}


def test_update_raises_probability_of_the_op_whose_samples_help_validation():
    torch.manual_seed(0)
    policy = MADAug(lr=0.05, inner_lr=0.5, init_seed=0)
    policy.bind(Pipeline.from_dict(PIPE), seed=0)
    w_true = torch.randn(6)
    val_x = torch.randn(64, 6)
    val_y = (val_x @ w_true > 0).long()
    model = torch.nn.Linear(6, 2)
    feats = torch.ones(32, 3)            # same features for all: the policy learns a global preference
    x = torch.randn(32, 6)
    y = (x @ w_true > 0).long()
    y[16:] = 1 - y[16:]                   # samples given op 1 carry wrong labels: their gradient hurts
    policy.current = {i: (0 if i < 16 else 1, 5) for i in range(32)}
    policy._ensure_net(3)
    before = policy._heads(feats[:1])[0][0, 0].item()
    for _ in range(30):
        policy.update(model, x, y, torch.arange(32), feats, val_x, val_y)
    after = policy._heads(feats[:1])[0][0, 0].item()
    assert after > before + 0.1 and after > 0.8, (before, after)
    assert all(p.grad is None for p in model.parameters())   # the model itself is untouched


def _train(records, policy, epochs, start=0, model_state=None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 3))
    if model_state is not None:
        model.load_state_dict(model_state)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = Pipeline.from_dict(PIPE).compile(records, batch_size=4, shuffle=True, policy=policy,
                                              return_provenance=True)
    val_x = torch.stack([torch.from_numpy(r["image"]).permute(2, 0, 1).float() / 255 for r in records[:4]])
    val_y = torch.tensor([r["label"] for r in records[:4]])
    seen = []
    for e in range(start, epochs):
        loader.set_epoch(e)
        for batch in loader:
            x = batch["image"].float() / 255
            feats = model[:3](x).detach()
            losses = torch.nn.functional.cross_entropy(model(x), batch["label"], reduction="none")
            loader.feedback(batch, losses=losses, features=feats)
            policy.update(model, x, batch["label"], batch["_index"], feats, val_x, val_y)
            opt.zero_grad()
            losses.mean().backward()
            opt.step()
            seen.append((batch["_index"].tolist(), [json.loads(p)[0]["params"] for p in batch["_provenance"]]))
    return seen, model


def test_decisions_deterministic_and_resume_identical(astronaut):
    img = np.ascontiguousarray(astronaut[::8, ::8][:16, :16])
    records = [{"image": np.roll(img, i, axis=0), "label": i % 3} for i in range(12)]
    full, _ = _train(records, MADAug(ramp_epochs=2), 3)
    again, _ = _train(records, MADAug(ramp_epochs=2), 3)
    assert full == again
    first = MADAug(ramp_epochs=2)
    head, model = _train(records, first, 2)
    state = first.state_dict()
    resumed = MADAug(ramp_epochs=2)
    resumed.load_state_dict(state)
    tail, _ = _train(records, resumed, 3, start=2, model_state=model.state_dict())
    assert head + tail == full
    chosen = [d for _, ds in full[-3:] for d in ds]
    assert all(len(d["ops"]) == 1 for d in chosen)    # epoch 2: share 1, one op per sample
    assert [c["epoch"] for c in resumed.curriculum] == [0, 1, 2] and resumed.curriculum[0]["share"] < 1
