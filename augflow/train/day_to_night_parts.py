"""The day-to-night trainer's parts: unpaired image folders, GAN losses, edge maps, the image pool,
and the discriminator's augmentation through an augflow batch pipeline.

Kept apart from `augflow.train.day_to_night` (config, training loop, checkpoints, command line)
so each reads on its own; everything here is a plain function or a small class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# ---- data -----------------------------------------------------------------------------------
def list_images(folder: str | Path) -> list[Path]:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"image folder {str(root)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_rgb(path: Path, shorter: int):
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = shorter / min(w, h)
        return im.resize((max(shorter, round(w * scale)), max(shorter, round(h * scale))), Image.BICUBIC)


def to_tensor(im) -> torch.Tensor:
    arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


class UnpairedImages(torch.utils.data.Dataset):
    """Day image i with a random night image; crops, flips and the night pick depend on (seed, epoch, i)."""

    def __init__(self, day: list[Path], night: list[Path], size: int, load_size: int, seed: int):
        self.day, self.night, self.size, self.load_size, self.seed = day, night, size, load_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.day)

    def _crop(self, path: Path, rng: np.random.Generator) -> torch.Tensor:
        im = load_rgb(path, self.load_size)
        w, h = im.size
        x, y = int(rng.integers(0, w - self.size + 1)), int(rng.integers(0, h - self.size + 1))
        im = im.crop((x, y, x + self.size, y + self.size))
        t = to_tensor(im)
        return t.flip(-1) if rng.random() < 0.5 else t

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([self.seed, self.epoch, i, 0xD2])))
        night = self.night[int(rng.integers(len(self.night)))]
        return self._crop(self.day[i], rng), self._crop(night, rng)


def fixed_day_batch(files: list[Path], n: int, size: int) -> torch.Tensor:
    """Centre crops of the first n day images: the same inputs in every sample grid."""
    out = []
    for path in files[:n]:
        im = load_rgb(path, size)
        w, h = im.size
        x, y = (w - size) // 2, (h - size) // 2
        out.append(to_tensor(im.crop((x, y, x + size, y + size))))
    return torch.stack(out)


# ---- edges and losses -----------------------------------------------------------------------
def edge_map(x: torch.Tensor, kind: str, hed: torch.nn.Module | None = None) -> torch.Tensor:
    """Differentiable edges of [-1, 1] images: B x 1 x H x W."""
    import kornia

    rgb = (x + 1) / 2
    if kind == "hed":
        return hed(rgb)
    gray = kornia.color.rgb_to_grayscale(rgb)
    if kind == "canny":   # kornia's canny edges carry no gradient; its magnitude does
        return kornia.filters.canny(gray)[0]
    return kornia.filters.sobel(gray)


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


class ImagePool:
    """CycleGAN's history of generated images: the discriminator sees half old fakes."""

    def __init__(self, size: int):
        self.size, self.images = size, []

    def query(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img[None]
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif rng.random() < 0.5:
                k = int(rng.integers(self.size))
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)


class DiscriminatorAugment:
    """An augflow pipeline's batch ops, applied to what the discriminator sees (differentiably)."""

    def __init__(self, path: str, device: torch.device, seed: int):
        from augflow import Pipeline
        from augflow.compile import make_plan
        from augflow.compile.batch_stage import BatchStage

        pipe = Pipeline.from_yaml(path, seed=seed)
        if not pipe.spec.batch_steps:
            raise ValueError(f"{path}: --d-augment needs a pipeline with `batch: {{ops: [...]}}` (Kornia ops)")
        self.stage = BatchStage(make_plan(pipe, device=str(device)))
        probe = torch.zeros(1, 3, 32, 32, device=device, requires_grad=True)
        if not self(probe, 0, 0).requires_grad:
            raise ValueError(f"{path}: the batch ops do not pass gradients to the generator; use geometric and "
                             "colour ops with Kornia kernels")

    def __call__(self, x: torch.Tensor, epoch: int, first_index: int) -> torch.Tensor:
        from augflow.compile.sample_stage import EPOCH_KEY, INDEX_KEY

        n = x.shape[0]
        batch = {"image": (x + 1) / 2, INDEX_KEY: torch.arange(first_index, first_index + n),
                 EPOCH_KEY: torch.full((n,), epoch, dtype=torch.long)}
        return self.stage(batch)["image"] * 2 - 1


__all__ = ["IMAGE_SUFFIXES", "list_images", "load_rgb", "to_tensor", "UnpairedImages", "fixed_day_batch",
           "edge_map", "lsgan", "ImagePool", "DiscriminatorAugment"]
