"""HardAugment: bounded, starts at the identity, learns to raise teacher-student disagreement."""

import numpy as np
import torch

from augflow.adaptive.hard import HardAugment, kd_loss


def _batch(astronaut):
    x = torch.from_numpy(np.ascontiguousarray(astronaut[::4, ::4])).permute(2, 0, 1).float() / 255
    return torch.stack([x, x.flip(-1), x.flip(-2), x.roll(5, -1)])


def _net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(32, 5))


def test_starts_as_identity(astronaut):
    x = _batch(astronaut)
    hard = HardAugment(channels=3)
    assert torch.allclose(hard(x), x, atol=1e-5)


def test_parameters_stay_in_bounds_whatever_the_weights(astronaut):
    x = _batch(astronaut)
    hard = HardAugment(channels=3, max_rotation=10.0)
    with torch.no_grad():
        for p in hard.head.parameters():
            p.uniform_(-50, 50)
    params = hard.params(x)
    assert (params.abs() <= hard.bounds + 1e-6).all() and params[:, 0].abs().max() > 5.0


def test_augmenter_steps_raise_disagreement_and_leave_models_alone(astronaut):
    x = _batch(astronaut)
    teacher, student = _net(0), _net(1)
    before_t = [p.clone() for p in teacher.parameters()]
    hard = HardAugment(channels=3, lr=5e-3, max_rotation=45, max_translate=0.3)
    g = torch.Generator().manual_seed(0)
    start = hard.disagreement(teacher, student, hard(x, torch.Generator().manual_seed(1))).item()
    for _ in range(40):
        hard.step(teacher, student, x, g)
    end = hard.disagreement(teacher, student, hard(x, torch.Generator().manual_seed(1))).item()
    assert end > start * 1.2, (start, end)
    assert all(torch.equal(a, b) for a, b in zip(before_t, teacher.parameters()))
    assert all(p.grad is None for p in student.parameters())


def test_kd_loss_is_zero_for_equal_logits_and_positive_otherwise():
    z = torch.randn(4, 5)
    assert kd_loss(z, z).abs().item() < 1e-6 and kd_loss(z, z.flip(1)).item() > 0
