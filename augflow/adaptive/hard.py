"""HardAugment: a learned augmenter that makes inputs on which teacher and student disagree, for
robust distillation (Nix et al., "HARD: Hard Augmentations for Robust Distillation").

The augmenter is a small network that reads the image (and a noise vector, so two calls differ)
and outputs per-sample spatial-transformer parameters (rotation, translation, scale) and colour
parameters (brightness, contrast), each squashed by tanh into a bound, so images stay plausible.
Kornia's differentiable warp and colour kernels apply them, so the augmenter trains by gradient:
it *maximises* the teacher-student divergence (KL of temperature-softened outputs), alternating
with the student's distillation step on the hard inputs. Its last layer starts at zero, i.e. the
identity transform. Images are float tensors in [0, 1], (B, C, H, W), before normalisation.

    hard = HardAugment(channels=3)
    for batch in loader:
        x = batch["image"]
        x_hard = hard.step(teacher, student, x)          # one augmenter update; returns a detached batch
        inputs = torch.cat([x, x_hard])
        loss = kd_loss(student(inputs), teacher(inputs).detach())
        ...
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0,
            reduction: str = "batchmean") -> torch.Tensor:
    """Hinton's distillation loss: T^2 * KL(softmax(teacher / T) || softmax(student / T))."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    log_target=True, reduction=reduction) * t * t


class HardAugment(nn.Module):
    """Bounded, differentiable affine + colour augmenter trained to maximise teacher-student disagreement."""

    PARAMS = ("angle", "tx", "ty", "log_scale", "brightness", "contrast")

    def __init__(self, channels: int = 3, *, max_rotation: float = 30.0, max_translate: float = 0.15,
                 max_scale: float = 0.2, max_brightness: float = 0.25, max_contrast: float = 0.3,
                 noise_dim: int = 8, hidden: int = 32, lr: float = 1e-3, temperature: float = 4.0):
        super().__init__()
        self.noise_dim, self.temperature = int(noise_dim), float(temperature)
        self.register_buffer("bounds", torch.tensor([max_rotation, max_translate, max_translate, max_scale,
                                                     max_brightness, max_contrast], dtype=torch.float32))
        self.features = nn.Sequential(nn.Conv2d(channels, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 + self.noise_dim, hidden), nn.ReLU(), nn.Linear(hidden, len(self.PARAMS)))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)

    def params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 6) parameters in their bounds: degrees, fractions of the size, log-scale, colour shifts."""
        z = torch.randn(x.shape[0], self.noise_dim, generator=generator, device=x.device)
        return torch.tanh(self.head(torch.cat([self.features(x), z], dim=1))) * self.bounds

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        from kornia.enhance import adjust_brightness, adjust_contrast
        from kornia.geometry.transform import get_affine_matrix2d, warp_affine

        b, _, h, w = x.shape
        p = self.params(x, generator)
        size = torch.tensor([w, h], dtype=x.dtype, device=x.device)
        centre = (size / 2).expand(b, 2)
        scale = torch.exp(p[:, 3:4]).expand(b, 2)
        matrix = get_affine_matrix2d(p[:, 1:3] * size, centre, scale, p[:, 0])
        out = warp_affine(x, matrix[:, :2], dsize=(h, w), padding_mode="border", align_corners=False)
        out = adjust_brightness(out, p[:, 4])
        out = adjust_contrast(out, 1.0 + p[:, 5])
        return out.clamp(0.0, 1.0)

    def disagreement(self, teacher: nn.Module, student: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The teacher-student divergence on x (per batch, the quantity the augmenter maximises)."""
        return kd_loss(student(x), teacher(x), self.temperature)

    def step(self, teacher: nn.Module, student: nn.Module, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One augmenter update (gradient ascent on the disagreement; teacher and student unchanged),
        then a fresh hard batch from the updated augmenter, detached, for the student's KD step."""
        seed = None if generator is None else int(torch.randint(2**62, (1,), generator=generator))
        g = None if seed is None else torch.Generator(device=x.device).manual_seed(seed)
        loss = -self.disagreement(teacher, student, self(x, g))
        self.optimizer.zero_grad()
        loss.backward(inputs=list(self.parameters()))
        self.optimizer.step()
        with torch.no_grad():
            return self(x, generator)
