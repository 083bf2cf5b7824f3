"""The feedback channel: decisions sent with the indices, feedback keyed by (index, epoch)."""

import json
import warnings

import numpy as np
import pytest
import torch

from augflow import Pipeline
from augflow.adaptive import AugmentSubset, LossCurriculum
from augflow.decision import LEVELS, controls

PIPE = {"augflow": 1, "seed": 5, "sample": [
    {"rotate": {"limit": [-40, 40]}},
    {"random_brightness_contrast": {"p": 0.8}},
    {"horizontal_flip": {"p": 0.5}},
    {"to_tensor": {}},
]}


@pytest.fixture()
def records(astronaut):
    img = np.ascontiguousarray(astronaut[::4, ::4])
    return [{"image": np.roll(img, 3 * i, axis=1), "label": i % 3} for i in range(12)]


def _losses(batch):
    """A fixed feedback rule: odd indices are hard (high loss), even ones easy."""
    idx = batch["_index"].float()
    return torch.where(batch["_index"] % 2 == 1, 5.0 + 0 * idx, 0.1 + 0.01 * idx)


def _run(records, policy, epochs=3, num_workers=0, start=0, executor="auto"):
    pipe = Pipeline.from_dict(PIPE)
    loader = pipe.compile(records, batch_size=4, shuffle=True, policy=policy, num_workers=num_workers,
                          return_provenance=True, executor=executor)
    out = []
    for e in range(start, epochs):
        loader.set_epoch(e)
        for batch in loader:
            out.append((batch["_index"].tolist(), batch["image"].clone(), batch["_provenance"]))
            losses = _losses(batch)
            feats = torch.stack([losses, (batch["_index"] % 3).float()], dim=1)
            loader.feedback(batch, losses=losses, features=feats)
    return out


def _same(a, b):
    assert len(a) == len(b)
    for (ia, xa, pa), (ib, xb, pb) in zip(a, b):
        assert ia == ib and pa == pb
        assert torch.equal(xa, xb)


def test_vocabulary_reads_magnitudes_from_op_schemas():
    pipe = Pipeline.from_dict(PIPE)
    ctl = {c.op: c for c in controls(pipe)}
    assert set(ctl) == {"rotate", "random_brightness_contrast", "horizontal_flip"}   # to_tensor is structural
    assert ctl["rotate"].magnitudes["limit"] == ((-40.0, 40.0), 0.0)
    assert set(ctl["random_brightness_contrast"].magnitudes) == {"brightness_limit", "contrast_limit"}
    assert ctl["horizontal_flip"].magnitudes == {}   # gated on/off only


def test_same_feedback_gives_identical_batches(records):
    _same(_run(records, LossCurriculum()), _run(records, LossCurriculum()))


POLICIES = {"loss_curriculum": LossCurriculum, "augment_subset": lambda: AugmentSubset(0.5, every=1)}


@pytest.mark.parametrize("make", POLICIES.values(), ids=list(POLICIES))
@pytest.mark.parametrize("executor", ["processes", "threads"])
def test_worker_counts_0_and_2_identical(records, make, executor):
    _same(_run(records, make(), num_workers=0), _run(records, make(), num_workers=2, executor=executor))


def test_high_loss_indices_get_lower_magnitudes(records):
    policy = LossCurriculum()
    out = _run(records, policy, epochs=3)
    last = out[-3:]   # epoch 2
    levels = {}
    for idx, _, provs in last:
        for i, prov in zip(idx, provs):
            levels[i] = json.loads(prov)[0]["params"]["ops"].get("sample[0]", 0)
    odd = [levels[i] for i in levels if i % 2 == 1]
    even = [levels[i] for i in levels if i % 2 == 0]
    assert max(odd) == 0 and min(even) >= LEVELS - 1   # hard samples unaugmented, easy ones at full strength
    first = out[:3]   # epoch 0: no feedback yet, everyone at the prior
    prior = {json.loads(p)[0]["params"]["ops"]["sample[0]"] for _, _, provs in first for p in provs}
    assert prior <= {4, 5, 6}


def test_replay_reproduces_policy_decisions(records):
    pipe = Pipeline.from_dict(PIPE)
    out = _run(records, LossCurriculum(), epochs=2)
    for idx, x, provs in out[-3:]:
        for k, (i, prov) in enumerate(zip(idx, provs)):
            replayed = pipe.replay(records[i], prov)
            assert torch.equal(torch.from_numpy(replayed["image"].numpy() if hasattr(replayed["image"], "numpy")
                                                else replayed["image"]), x[k])


def test_loader_matches_pipeline_call_with_decision(records):
    pipe = Pipeline.from_dict(PIPE)
    decision = {"ops": {"sample[0]": 3, "sample[2]": 10}}   # rotate weakened to 3/10, brightness skipped
    angles = []
    for index in range(len(records)):
        out = pipe(records[index], index=index, epoch=4, decision=decision)
        assert out.provenance[0].op == "policy" and out.provenance[0].params["ops"] == decision["ops"]
        ops = [e.op for e in out.provenance[1:]]
        assert "random_brightness_contrast" not in ops and ops[-1] == "to_tensor"
        assert set(ops) <= {"rotate", "horizontal_flip", "to_tensor"}
        angles += [e.params for e in out.provenance[1:] if e.op == "rotate"]
        replayed = pipe.replay(records[index], out.provenance)
        assert torch.equal(replayed["image"], out["image"])
    assert angles   # rotate (p=0.5) ran for some samples, drawing its own parameters from the narrower range


def test_weakened_op_draws_from_a_narrower_range(records):
    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{"rotate": {"limit": [-40, 40]}}]})
    op = pipe.realizer().op_for(pipe.op_steps()[0], {"ops": {"sample[0]": 2}})
    assert tuple(op.transform.limit) == (-8.0, 8.0)
    assert pipe.realizer().op_for(pipe.op_steps()[0], {"ops": {"sample[0]": 0}}) is None
    assert pipe.realizer().op_for(pipe.op_steps()[0], {"ops": {}}) is None


@pytest.mark.parametrize("make", POLICIES.values(), ids=list(POLICIES))
def test_resume_from_state_dict_continues_identically(records, make):
    full = _run(records, make(), epochs=3)
    first = make()
    _run(records, first, epochs=2)
    state = json.loads(json.dumps(first.state_dict()))   # a JSON round trip, as a checkpoint would be
    resumed = make()
    resumed.load_state_dict(state)
    tail = _run(records, resumed, epochs=3, start=2)
    _same(full[-3:], tail)


def test_without_feedback_policy_uses_prior_and_warns_once(records):
    pipe = Pipeline.from_dict(PIPE)
    loader = pipe.compile(records, batch_size=6, policy=LossCurriculum(prior=0.3), return_provenance=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        levels = []
        for e in range(3):
            loader.set_epoch(e)
            for batch in loader:
                levels += [json.loads(p)[0]["params"]["ops"]["sample[0]"] for p in batch["_provenance"]]
    assert set(levels) <= {3, 4} and len([w for w in caught if "no feedback" in str(w.message)]) == 1


def test_bad_decision_names_the_controlled_ops(records):
    pipe = Pipeline.from_dict(PIPE)
    with pytest.raises(ValueError, match="sample\\[0\\]"):
        pipe(records[0], index=0, decision={"ops": {"sample[3]": 5}})


def test_feedback_without_policy_says_how_to_fix(records):
    loader = Pipeline.from_dict(PIPE).compile(records, batch_size=4)
    batch = next(iter(loader))
    with pytest.raises(ValueError, match="policy="):
        loader.feedback(batch, losses=torch.zeros(4))


def test_policy_refuses_merging_passes(records):
    with pytest.raises(ValueError, match="affine_fusion"):
        Pipeline.from_dict(PIPE).compile(records, policy=LossCurriculum(), passes=["affine_fusion"])


def test_size_setting_ops_always_run_and_randaugment_magnitude_scales(astronaut):
    pipe = Pipeline.from_yaml("pipelines/randaugment.yaml")
    ctl = {c.op: c for c in controls(pipe)}
    assert ctl["random_resized_crop"].sets_size and ctl["rand_augment"].magnitudes["magnitude"] == (9, 0.0)
    for decision in ({"ops": {"sample[2]": 5}}, {"ops": {}}, {"ops": {"sample[0]": 0}}):
        out = pipe({"image": astronaut}, index=3, decision=decision)
        assert out["image"].shape[-2:] == (224, 224)          # the crop to size still ran
        assert out.provenance.ops()[1] == "random_resized_crop"
    weak = pipe.realizer().op_for(pipe.op_steps()[2], {"ops": {"sample[2]": 5}})
    assert weak.params.magnitude == 4                          # round(0.5 * 9)
    identity = pipe.realizer().op_for(pipe.op_steps()[0], {"ops": {"sample[0]": 0}})
    assert tuple(identity.transform.scale) == (1.0, 1.0)


def test_user_batch_sampler_batches_carry_decisions(records):
    pipe = Pipeline.from_dict(PIPE)
    batches = [[0, 5, 7], [1, 2, 3, 4], [6, 8, 9, 10, 11]]
    runs = []
    for workers in (0, 2):
        loader = pipe.compile(records, policy=LossCurriculum(), batch_sampler=batches, num_workers=workers,
                              return_provenance=True)
        seen = []
        for e in range(2):
            loader.set_epoch(e)
            for batch in loader:
                assert all(json.loads(p)[0]["op"] == "policy" for p in batch["_provenance"])
                seen.append((batch["_index"].tolist(), batch["_provenance"]))
                loader.feedback(batch, losses=_losses(batch))
        runs.append(seen)
    assert [idx for idx, _ in runs[0][:3]] == batches and runs[0] == runs[1]


def test_policy_with_a_backend_that_cannot_take_decisions_says_which_to_use(records):
    from augflow.compile.backends import BackendError

    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{"horizontal_flip": {"p": 0.5}}]})
    with pytest.raises(BackendError, match="backend='albumentations'"):
        pipe.compile(records, policy=LossCurriculum(), backend="kornia")
