"""NegVSR noise negatives: real noise taken from flat regions, added to clean images, and augmented
into negatives.

From "NegVSR: Augmenting Negatives for Generalized Noise Modeling in Real-World Video
Super-Resolution" (Song et al., AAAI 2024) and its code (`collect_noise_sequence`, `rot_PM`):
- extraction: slide a window over the (gray) frames of a low-quality image or clip; a window is
  noise where it is flat — variance below `max_var` and mean above `min_mean` in every frame, and,
  for a clip, stable over time (the variance of the per-frame variances and means below
  `max_var_of_var` / `max_var_of_mean`). The noise is the window minus its mean (per frame and
  channel). Thresholds are in 8-bit gray levels, the paper's defaults: window 64, 50, 0, 50, 50.
- mixing: noise from the bank is added to a clean image (the positive: a realistic noisy input);
- negative augmentation: the same noise cut into square cells which are rotated by multiples of
  90 degrees, flipped and shuffled (the paper rotates the patches of an 8 x 8 grid), then added to
  the same clean image: a negative whose noise statistics match but whose structure does not.

`augflow noise-bank` writes the bank (an .npz); the `noise_negatives` op reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
from pydantic import Field, field_validator

from augflow.negatives.field import add_negatives, image_field
from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample

_LUMA = np.array([0.299, 0.587, 0.114], np.float64)
BANK_VERSION = 1


# ---- extraction ---------------------------------------------------------------------------------
def _frames(frames: np.ndarray) -> tuple[np.ndarray, float]:
    """(T, H, W, C) frames (alpha dropped) from an image (H, W[, C]) or a clip (T, H, W[, C]), and
    the factor to 8-bit units."""
    arr = np.asarray(frames)
    scale = {np.uint8: 1.0, np.uint16: 255.0 / 65535.0}.get(arr.dtype.type, 255.0)
    if arr.ndim == 2:
        arr = arr[None, :, :, None]
    elif arr.ndim == 3:
        arr = arr[None] if arr.shape[2] in (1, 2, 3, 4) else arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"noise extraction takes an image (H, W[, C]) or a clip (T, H, W[, C]); got shape "
                         f"{np.asarray(frames).shape}")
    if arr.shape[3] in (2, 4):                         # drop alpha
        arr = arr[..., :-1]
    return arr, scale


def _gray(frames: np.ndarray, scale: float) -> np.ndarray:
    """(T, H, W) float32 gray levels in 8-bit units (ITU-R 601 luma, as PIL's "L")."""
    if frames.shape[3] == 1:
        return frames[..., 0].astype(np.float32) * np.float32(scale)
    return frames.astype(np.float32) @ (_LUMA * scale).astype(np.float32)


def _window_stats(gray: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of every size x size window at `stride` (T, ny, nx)."""
    t, h, w = gray.shape
    ny, nx = (h - size) // stride + 1, (w - size) // stride + 1
    if stride == size:                                  # tiling windows: a reshape, no integral image
        tiles = gray[:, :ny * size, :nx * size].reshape(t, ny, size, nx, size)
        return tiles.mean(axis=(2, 4), dtype=np.float64), tiles.var(axis=(2, 4), dtype=np.float64)
    import cv2

    mean = np.empty((t, ny, nx))
    var = np.empty((t, ny, nx))
    ys, xs = np.arange(ny)[:, None] * stride, np.arange(nx)[None, :] * stride
    n = float(size * size)
    for i in range(t):
        s1, s2 = cv2.integral2(np.ascontiguousarray(gray[i], dtype=np.float64), sdepth=cv2.CV_64F,
                               sqdepth=cv2.CV_64F)

        def box(s):
            return s[ys + size, xs + size] - s[ys, xs + size] - s[ys + size, xs] + s[ys, xs]

        mean[i] = box(s1) / n
        var[i] = np.maximum(box(s2) / n - mean[i] ** 2, 0.0)
    return mean, var


@dataclass
class NoisePatches:
    """Noise taken from one image or clip: (N, T, p, p, C) float32 in [0, 1] units, and where from."""

    noise: np.ndarray
    origins: np.ndarray          # (N, 2) top-left y, x
    variances: np.ndarray        # (N,) mean gray variance of the window, in 8-bit units


def extract_noise(frames: np.ndarray, patch_size: int = 64, stride: int | None = None, max_var: float = 50.0,
                  min_mean: float = 0.0, max_var_of_var: float = 50.0, max_var_of_mean: float = 50.0,
                  max_patches: int | None = None) -> NoisePatches:
    """Noise patches from the flat windows of an image (H, W[, C]) or a clip of frames (T, H, W[, C]).

    A window qualifies when its gray variance is below `max_var` and its mean above `min_mean` in
    every frame, and (for T > 1) the variance over frames of those variances and means stays below
    `max_var_of_var` and `max_var_of_mean` (8-bit gray units, as in NegVSR). The noise is the
    window minus its own mean, per frame and channel. With `max_patches`, the flattest windows are
    kept.
    """
    if patch_size < 2:
        raise ValueError(f"patch_size must be at least 2, got {patch_size}")
    stride = patch_size if stride is None else int(stride)
    if stride < 1:
        raise ValueError(f"stride must be positive, got {stride}")
    clip, scale = _frames(frames)
    t, h, w, c = clip.shape
    empty = NoisePatches(np.zeros((0, t, patch_size, patch_size, c), np.float32), np.zeros((0, 2), np.int32),
                         np.zeros(0, np.float32))
    if h < patch_size or w < patch_size:
        return empty
    mean, var = _window_stats(_gray(clip, scale), patch_size, stride)
    ok = (var < max_var).all(0) & (mean > min_mean).all(0)
    if t > 1:
        ok &= (var.var(0) <= max_var_of_var) & (mean.var(0) <= max_var_of_mean)
    iy, ix = np.nonzero(ok)
    flatness = var.mean(0)[iy, ix]
    order = np.argsort(flatness, kind="stable")
    if max_patches is not None:
        order = order[:max_patches]
    iy, ix, flatness = iy[order], ix[order], flatness[order]
    if len(iy) == 0:
        return empty
    ys, xs = iy * stride, ix * stride
    patches = np.stack([clip[:, y:y + patch_size, x:x + patch_size] for y, x in zip(ys, xs)]).astype(np.float32)
    patches -= patches.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    noise = patches * np.float32(scale / 255.0)
    return NoisePatches(noise.astype(np.float32), np.stack([ys, xs], 1).astype(np.int32), flatness.astype(np.float32))


# ---- the bank file ------------------------------------------------------------------------------
@dataclass
class NoiseBank:
    """Noise sequences (N, T, p, p, C) float32 in [0, 1] units, with their sources."""

    noise: np.ndarray
    sources: np.ndarray          # (S,) source names
    origins: np.ndarray          # (N, 3) source index, y, x
    variances: np.ndarray
    settings: dict[str, Any]
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.noise)

    @property
    def patch_size(self) -> int:
        return int(self.noise.shape[2])

    def save(self, path: str | Path) -> Path:
        """Write the bank as a compressed .npz (noise stored as float16: its values are small)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, noise=self.noise.astype(np.float16), sources=np.asarray(self.sources, dtype=str),
                            origins=self.origins.astype(np.int32), variances=self.variances.astype(np.float32),
                            settings=np.array(json.dumps({**self.settings, "version": BANK_VERSION})))
        os.replace(tmp, path)
        return path


def build_noise_bank(items: Iterable[tuple[str, np.ndarray]], **settings: Any) -> NoiseBank:
    """A bank from (source name, image or clip) pairs; `settings` go to `extract_noise`."""
    noise, sources, origins, variances = [], [], [], []
    for name, frames in items:
        got = extract_noise(frames, **settings)
        if len(got.noise) and noise and got.noise.shape[1:] != noise[0].shape[1:]:
            raise ValueError(f"{name}: noise of shape {got.noise.shape[1:]} does not match the bank's "
                             f"{noise[0].shape[1:]}; use one channel count and frame count for all inputs")
        if len(got.noise):
            noise.append(got.noise)
            origins.append(np.concatenate([np.full((len(got.noise), 1), len(sources), np.int32), got.origins], 1))
            variances.append(got.variances)
        sources.append(str(name))
    if not noise:
        raise ValueError(f"no flat window found in {len(sources)} input(s) with {settings or 'the default settings'}; "
                         "raise max_var or lower patch_size")
    stack = np.concatenate(noise)
    return NoiseBank(stack, np.asarray(sources), np.concatenate(origins), np.concatenate(variances), dict(settings),
                     _fingerprint(stack.astype(np.float16)))


def _fingerprint(noise16: np.ndarray) -> str:
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(noise16).tobytes()).hexdigest()[:32]


_BANKS: dict[tuple[str, int, int], NoiseBank] = {}


def load_noise_bank(path: str | Path) -> NoiseBank:
    """Read a bank written by `augflow noise-bank` (cached per process while the file is unchanged)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"noise bank {str(p)!r} does not exist; make one with `augflow noise-bank FRAMES... "
                                f"-o {p.name}`")
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _BANKS:
        with np.load(p, allow_pickle=False) as data:
            missing = {"noise", "sources", "origins", "variances", "settings"} - set(data.files)
            if missing:
                raise ValueError(f"{p} is not an augflow noise bank (missing {sorted(missing)})")
            noise16 = data["noise"]
            _BANKS[key] = NoiseBank(noise16.astype(np.float32), data["sources"], data["origins"], data["variances"],
                                    json.loads(str(data["settings"])), _fingerprint(noise16))
    return _BANKS[key]


# ---- kernels ------------------------------------------------------------------------------------
def noise_field(bank: NoiseBank, tiles: np.ndarray, frame: int, height: int, width: int, channels: int) -> np.ndarray:
    """Bank patches `tiles` (row-major grid) laid side by side, cropped to height x width x channels."""
    p = bank.patch_size
    ty, tx = -(-height // p), -(-width // p)
    grid = bank.noise[np.asarray(tiles).reshape(ty, tx), frame]            # (ty, tx, p, p, C)
    field = grid.transpose(0, 2, 1, 3, 4).reshape(ty * p, tx * p, -1)[:height, :width]
    if field.shape[2] == channels:
        return field
    gray = field[..., :1] if field.shape[2] == 1 else (field @ _LUMA.astype(np.float32))[..., None]
    return np.repeat(gray, channels, axis=2)


def rearrange_cells(noise: np.ndarray, cell: int, rot: np.ndarray, flip: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """NegVSR's negative augmentation: cells rotated (k * 90 deg), flipped (1: left-right, 2: up-down) and
    moved to positions `perm` (cell i goes to slot perm[i]). `noise` is a multiple of `cell` in size."""
    h, w, c = noise.shape
    ny, nx = h // cell, w // cell
    cells = noise.reshape(ny, cell, nx, cell, c).transpose(0, 2, 1, 3, 4).reshape(ny * nx, cell, cell, c)
    flip, rot = np.asarray(flip), np.asarray(rot)
    cells = cells.copy()
    cells[flip == 1] = cells[flip == 1][:, :, ::-1]
    cells[flip == 2] = cells[flip == 2][:, ::-1]
    for k in (1, 2, 3):
        cells[rot == k] = np.rot90(cells[rot == k], k, axes=(1, 2))
    out = np.empty_like(cells)
    out[np.asarray(perm)] = cells
    return out.reshape(ny, nx, cell, cell, c).transpose(0, 2, 1, 3, 4).reshape(h, w, c)


def add_noise(image: np.ndarray, noise: np.ndarray, strength: float) -> np.ndarray:
    """image + strength * noise, in the image's dtype (noise is in [0, 1] units)."""
    scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(image.dtype.type, 1.0)
    img = image if image.ndim == 3 else image[:, :, None]
    out = img.astype(np.float32) / scale + strength * noise[..., :img.shape[2]]
    out = np.clip(out, 0.0, 1.0)
    if scale != 1.0:
        out = np.round(out * scale).astype(image.dtype)
    else:
        out = out.astype(image.dtype)
    return out if image.ndim == 3 else out[:, :, 0]


# ---- the op ---------------------------------------------------------------------------------------
Span = float | tuple[float, float]


@register("noise_negatives", targets={"image", "negatives"}, family="negatives")
class NoiseNegatives(Op):
    """Add real noise from a bank to the image; make `k` negatives with the noise's cells rotated,
    flipped and shuffled (NegVSR).

    The image becomes image + noise (the positive); each negative is the clean image plus the
    rearranged noise, appended to the `negatives` field. Params record the bank's fingerprint, the
    bank patches used and each negative's cell transforms, so replay is exact.
    """

    class Params(Schema):
        noise_bank: str = Field(..., description="Bank file written by `augflow noise-bank` (.npz).")
        k: int = Field(2, ge=0, le=64, description="Negatives per sample.")
        strength: Span = Field(1.0, description="Noise scale; a value or a [low, high] range.")
        cell: int = Field(16, ge=2, description="Side in pixels of the cells the negatives rearrange.")
        augment: list[Literal["rotate", "flip", "shuffle"]] = Field(
            ["rotate", "flip", "shuffle"], min_length=1, description="Cell transforms for the negatives.")
        cell_p: float = Field(0.5, ge=0.0, le=1.0, description="Probability each cell is rotated / flipped.")
        add_to_image: bool = Field(True, description="Add the noise to the image (the positive); False keeps "
                                   "the image clean and only makes negatives.")
        field: str | None = Field(None, description="Image field (default: the first image).")
        to: str = Field("negatives", description="Field the negatives are appended to.")

        @field_validator("noise_bank")
        @classmethod
        def _bank_exists(cls, value: str) -> str:
            if not Path(value).expanduser().is_file():
                raise ValueError(f"noise bank {value!r} does not exist; make one with `augflow noise-bank`")
            return value

        @field_validator("strength")
        @classmethod
        def _strength(cls, value: Span) -> Span:
            low, high = (value, value) if isinstance(value, (int, float)) else value
            if low < 0 or high < low:
                raise ValueError("must be a non-negative number or a [low, high] range with low <= high")
            return value

    @property
    def bank(self) -> NoiseBank:
        return load_noise_bank(self.params.noise_bank)

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        bank, pr = self.bank, self.params
        name = image_field(sample, pr.field, self.name)
        h, w = sample[name].shape[:2]
        cell = pr.cell
        hc, wc = -(-h // cell) * cell, -(-w // cell) * cell
        p = bank.patch_size
        tiles = rng.integers(0, len(bank), size=(-(-hc // p)) * (-(-wc // p)))
        frame = int(rng.integers(0, bank.noise.shape[1]))
        low, high = (pr.strength, pr.strength) if isinstance(pr.strength, (int, float)) else pr.strength
        strength = float(low) if low == high else float(rng.uniform(low, high))
        n_cells = (hc // cell) * (wc // cell)
        negs = [_draw_cells(rng, n_cells, pr.augment, pr.cell_p) for _ in range(pr.k)]
        return {"field": name, "bank": bank.fingerprint, "tiles": tiles.astype(np.int32), "frame": frame,
                "strength": strength, "negatives": negs}

    def apply(self, sample: Sample, field: str, bank: str, tiles: np.ndarray, frame: int, strength: float,
              negatives: list[dict[str, np.ndarray]]) -> Sample:
        noise_bank = self.bank
        if bank != noise_bank.fingerprint:
            raise ValueError(f"op {self.name!r}: these parameters were drawn from the noise bank {bank}; "
                             f"{self.params.noise_bank} is now {noise_bank.fingerprint}; replay with that bank")
        image = sample[field]
        h, w = image.shape[:2]
        channels = 1 if image.ndim == 2 else image.shape[2]
        cell = self.params.cell
        hc, wc = -(-h // cell) * cell, -(-w // cell) * cell
        noise = noise_field(noise_bank, tiles, frame, hc, wc, channels)
        out = sample.copy()
        if self.params.add_to_image:
            out[field] = add_noise(image, noise[:h, :w], strength)
        used = {"tiles": [int(t) for t in tiles], "frame": int(frame), "bank": bank}
        items = []
        for j, neg in enumerate(negatives):
            moved = rearrange_cells(noise, cell, neg["rot"], neg["flip"], neg["perm"])[:h, :w]
            items.append({"value": add_noise(image, moved, strength), "info": {"noise": used, "negative": j}})
        return add_negatives(out, self.params.to, items, kind="image", op=self.name, source=field)


def _draw_cells(rng: np.random.Generator, n: int, augment: list[str], cell_p: float) -> dict[str, np.ndarray]:
    rot = np.zeros(n, np.uint8)
    flip = np.zeros(n, np.uint8)
    perm = np.arange(n, dtype=np.int32)
    if "rotate" in augment:
        chosen = rng.random(n) < cell_p
        rot[chosen] = rng.integers(1, 4, size=int(chosen.sum()))
    if "flip" in augment:
        chosen = rng.random(n) < cell_p
        flip[chosen] = rng.integers(1, 3, size=int(chosen.sum()))
    if "shuffle" in augment and n > 1:
        perm = rng.permutation(n).astype(np.int32)
    if not rot.any() and not flip.any() and (perm == np.arange(n)).all():
        # an identity draw would make a "negative" equal to the positive: change one cell
        i = int(rng.integers(0, n))
        if "rotate" in augment:
            rot[i] = 2
        elif "flip" in augment:
            flip[i] = 1
        else:
            j = (i + 1) % n
            perm[i], perm[j] = perm[j], perm[i]
    return {"rot": rot, "flip": flip, "perm": perm}


__all__ = ["extract_noise", "NoisePatches", "NoiseBank", "build_noise_bank", "load_noise_bank", "noise_field",
           "rearrange_cells", "add_noise", "NoiseNegatives"]
