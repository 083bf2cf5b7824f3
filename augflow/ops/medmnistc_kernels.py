"""Kernels of the MedMNIST-C corruptions, ported from the `medmnistc` package (0.1.0, Apache-2.0).

Di Salvo, Doerrich, Ledig, "MedMNIST-C: Comprehensive benchmark and improved classifier robustness
by simulating realistic image corruptions" (2024, arXiv:2406.17536); code:
github.com/francescodisalvo05/medmnistc-api. Each kernel is `(rgb uint8 HxWx3, param, rng, level)
-> rgb uint8 HxWx3` and computes what the reference class's `apply(img, severity)` computes, with
the same library calls (Pillow, OpenCV, SciPy) and the same order of random draws, so that a
generator producing the reference's numbers gives the reference's output (the tests check this).
`param` is one entry of the severity table and `level` the severity index 0..4.

Where the reference needs something we do not depend on, the computation is written out:
- scikit-image's s&p noise (`random_noise(mode="s&p")`) and `rgb2hsv`/`hsv2rgb` (same formulas,
  same draws);
- torchvision's PIL `adjust_gamma` (the same lookup table) and `gaussian_blur` (the same kernel
  and reflect padding, via OpenCV in float32, then rounded as torchvision rounds);
- ImageMagick's `MotionBlurImage` (Wand), as its source defines it: a one-sided Gaussian of
  2*ceil(radius)+1 taps along the angle, edge pixels repeated, quantised as ImageMagick Q16 and
  its 8-bit PNG writer do; it equals Wand's output.
The reference draws positions with Python's `random.randint(a, b)`; here that is
`rng.integers(a, b + 1)`. Where the reference would fail on images smaller than the 224 px it was
written for (positions drawn from an empty range), the range is clamped instead.
"""

from __future__ import annotations

import functools
import math
import string
from importlib import resources
from io import BytesIO
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance
from scipy.ndimage import zoom as scizoom


def _randint(rng: Any, lo: int, hi: int) -> int:
    """Python's random.randint(lo, hi) (inclusive) on a numpy-style generator; an empty range gives lo."""
    return int(rng.integers(lo, max(lo, hi) + 1))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """The reference's float [0, 1] -> uint8 step: clip, scale, truncate."""
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


# ---- noise --------------------------------------------------------------------------------------
def gaussian_noise(img: np.ndarray, c: float, rng: Any, level: int) -> np.ndarray:
    x = img / 255.0
    return _to_uint8(x + rng.normal(size=x.shape, scale=c))


def speckle_noise(img: np.ndarray, c: float, rng: Any, level: int) -> np.ndarray:
    x = img / 255.0
    return _to_uint8(x + x * rng.normal(size=x.shape, scale=c))


def shot_noise(img: np.ndarray, mult: float, rng: Any, level: int) -> np.ndarray:
    x = img / 255.0
    return _to_uint8(rng.poisson(x * mult) / mult)


def impulse_noise(img: np.ndarray, amount: float, rng: Any, level: int) -> np.ndarray:
    """skimage.util.random_noise(x, mode="s&p", amount=amount): flip with p=amount, salt or pepper 50/50."""
    x = img / 255.0
    flipped = rng.random(x.shape) <= amount
    salted = rng.random(x.shape) <= 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return _to_uint8(x)


# ---- digital ------------------------------------------------------------------------------------
def pixelate(img: np.ndarray, factor: float, rng: Any, level: int) -> np.ndarray:
    pil = Image.fromarray(img)
    w, h = pil.size
    small = pil.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.BOX)
    return np.array(small.resize((w, h), Image.BOX))


def jpeg_compression(img: np.ndarray, quality: int, rng: Any, level: int) -> np.ndarray:
    buf = BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(quality))
    return np.array(Image.open(buf))


# ---- blur ---------------------------------------------------------------------------------------
def _disk(radius: float, alias_blur: float) -> np.ndarray:
    if radius <= 8:
        L, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        L, ksize = np.arange(-radius, radius + 1), (5, 5)
    X, Y = np.meshgrid(L, L)
    disk = np.array((X ** 2 + Y ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def defocus_blur(img: np.ndarray, radius_alias: tuple[float, float], rng: Any, level: int) -> np.ndarray:
    x = img / 255.0
    kernel = _disk(*radius_alias)
    out = np.stack([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)], axis=2)
    return _to_uint8(out)


def motion_blur(img: np.ndarray, radius_sigma: tuple[float, float], rng: Any, level: int) -> np.ndarray:
    """ImageMagick's MotionBlurImage(radius, sigma, angle), angle ~ U(-45, 45) as the reference draws it."""
    radius, sigma = radius_sigma
    angle = float(rng.uniform(-45, 45))
    width = int(2 * math.ceil(radius) + 1)
    taps = np.exp(-(np.arange(width, dtype=np.float64) ** 2) / (2.0 * sigma * sigma))
    taps /= taps.sum()
    px, py = width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle))
    hyp = math.hypot(px, py)
    h, w = img.shape[:2]
    padded = np.pad(img, ((width, width), (width, width), (0, 0)), mode="edge")   # ImageMagick's edge pixels
    out = np.zeros(img.shape, np.float64)
    for i, k in enumerate(taps):
        ox, oy = math.ceil(i * py / hyp - 0.5), math.ceil(i * px / hyp - 0.5)
        out += k * padded[width + oy:width + oy + h, width + ox:width + ox + w]
    # ImageMagick (Q16) rounds to 16 bits; its 8-bit PNG writer, which the reference reads back, truncates.
    return (np.clip(np.rint(out * 257), 0, 65535).astype(np.int64) // 257).astype(np.uint8)


def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / zoom_factor)), int(np.ceil(w / zoom_factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    img = scizoom(img[top:top + ch, left:left + cw], (zoom_factor, zoom_factor, 1), order=1)
    trim_top, trim_left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[trim_top:trim_top + h, trim_left:trim_left + w]


def zoom_blur(img: np.ndarray, zoom_factors: np.ndarray, rng: Any, level: int) -> np.ndarray:
    x = (img / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for z in zoom_factors:
        out += _clipped_zoom(x, z)
    return _to_uint8((x + out) / (len(zoom_factors) + 1))


def gaussian_blur(img: np.ndarray, ksize: int, rng: Any, level: int) -> np.ndarray:
    """torchvision's gaussian_blur(img, ksize): sigma = 0.3 ((k - 1) / 2 - 1) + 0.8, reflect padding."""
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    out = cv2.GaussianBlur(img.astype(np.float32), (ksize, ksize), sigmaX=sigma, sigmaY=sigma,
                           borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---- colour -------------------------------------------------------------------------------------
def brightness(img: np.ndarray, factor: float, rng: Any, level: int) -> np.ndarray:
    return np.array(ImageEnhance.Brightness(Image.fromarray(img)).enhance(factor)).astype(np.uint8)


def contrast(img: np.ndarray, factor: float, rng: Any, level: int) -> np.ndarray:
    return np.array(ImageEnhance.Contrast(Image.fromarray(img)).enhance(factor)).astype(np.uint8)


def gamma_correction(img: np.ndarray, gamma: float, rng: Any, level: int) -> np.ndarray:
    """torchvision's PIL adjust_gamma(img, gamma, gain=1): the same 256-entry table."""
    lut = np.array([int((255 + 1 - 1e-3) * pow(v / 255.0, gamma)) for v in range(256)])
    return np.clip(lut, 0, 255).astype(np.uint8)[img]


def _rgb2hsv(arr: np.ndarray) -> np.ndarray:
    out = np.empty_like(arr)
    v = arr.max(-1)
    delta = np.ptp(arr, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = delta / v
        s[delta == 0.0] = 0.0
        for c, offset, a, b in ((0, 0.0, 1, 2), (1, 2.0, 2, 0), (2, 4.0, 0, 1)):   # later maxima win
            idx = arr[..., c] == v
            out[idx, 0] = offset + (arr[idx, a] - arr[idx, b]) / delta[idx]
        h = (out[..., 0] / 6.0) % 1.0
        h[delta == 0.0] = 0.0
    out[..., 0], out[..., 1], out[..., 2] = h, s, v
    out[np.isnan(out)] = 0
    return out


def _hsv2rgb(arr: np.ndarray) -> np.ndarray:
    hi = np.floor(arr[..., 0] * 6)
    f = arr[..., 0] * 6 - hi
    p = arr[..., 2] * (1 - arr[..., 1])
    q = arr[..., 2] * (1 - f * arr[..., 1])
    t = arr[..., 2] * (1 - (1 - f) * arr[..., 1])
    v = arr[..., 2]
    hi = np.stack([hi, hi, hi], axis=-1).astype(np.uint8) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return np.choose(hi, np.stack([np.stack(c, axis=-1) for c in choices]))


def saturate(img: np.ndarray, amount: float, rng: Any, level: int) -> np.ndarray:
    """Add `amount` to HSV saturation (scikit-image's HSV conversion, as the reference uses)."""
    hsv = _rgb2hsv(img / 255.0)
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] + amount, 0, 1)
    return (np.clip(_hsv2rgb(hsv), 0, 1) * 255).astype(np.uint8)


# ---- task-specific ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def inks(size_key: int) -> tuple[np.ndarray, ...]:
    """The reference's ink-blot masks (augflow/data/medmnistc_inks.npz, Apache-2.0, see the NOTICE)."""
    with resources.files("augflow").joinpath("data/medmnistc_inks.npz").open("rb") as fh:
        data = np.load(fh, allow_pickle=False)
        shape = tuple(int(v) for v in data[f"shape{size_key}"])
        masks = np.unpackbits(data[f"size{size_key}"], axis=-1, count=shape[-1]).reshape(shape)
    return tuple(m.astype(np.uint8) for m in masks)


def stain_deposit(img: np.ndarray, max_marks: int, rng: Any, level: int) -> np.ndarray:
    """Black ink blots; the reference picks the blot size set by max(3, severity index)."""
    x = np.array(img)
    h, w = x.shape[:2]
    num_marks = _randint(rng, 1, max_marks) if max_marks > 1 else max_marks
    blots = inks(max(3, level))
    for _ in range(num_marks):
        ink = blots[_randint(rng, 0, len(blots) - 1)]
        ih, iw = ink.shape
        rx = _randint(rng, 10, w - iw - 10)
        ry = _randint(rng, 10, h - ih - 10)
        region = x[ry:ry + ih, rx:rx + iw]
        region *= (1 - ink[:region.shape[0], :region.shape[1], None])
    return x


def bubble(img: np.ndarray, radius_count: tuple[int, int], rng: Any, level: int) -> np.ndarray:
    """Translucent white discs (air bubbles under a cover slip), pasted with Pillow."""
    max_radius, max_bubbles = radius_count
    pil = Image.fromarray(img)
    width, height = pil.size
    layer = Image.new("RGBA", pil.size, (255, 255, 255, 0))
    draw = ImageDraw.Draw(layer)
    border, alpha = 2, 100
    for _ in range(_randint(rng, 7, max_bubbles)):
        r = _randint(rng, 3, max_radius)
        # The reference names Pillow's (width, height) the other way round; equal for its square images.
        x, y = _randint(rng, r, width - r), _randint(rng, r, height - r)
        draw.ellipse((x - r - border, y - r - border, x + r + border, y + r + border), fill=(255, 255, 255, alpha + 30))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, alpha))
    pil.paste(layer, (0, 0), layer)
    return np.array(pil)


def black_corner(img: np.ndarray, multiplier: float, rng: Any, level: int) -> np.ndarray:
    """Black outside a centred circle (the dermatoscope's vignette)."""
    h, w = img.shape[:2]
    center = (w // 2, h // 2)
    radius = min(center[0], center[1], w - center[0], h - center[1])
    circle = np.zeros((h, w), np.uint8)
    cv2.circle(circle, center, int(radius * multiplier), 255, thickness=-1)
    out = np.array(img)
    out[circle != 255] = 0
    return out


def characters(img: np.ndarray, words_letters_scale: tuple[int, int, float], rng: Any, level: int) -> np.ndarray:
    """Random lower-case words in random colours (pen marks and rulers' labels on skin)."""
    max_words, max_letters, max_font_scale = words_letters_scale
    out = np.array(img)
    h, w = out.shape[:2]
    for _ in range(_randint(rng, 1, max_words)):
        num_letters = _randint(rng, 3, max_letters)
        font_scale = _randint(rng, 14, int(max_font_scale * 100)) / 100.0
        text = "".join(string.ascii_lowercase[_randint(rng, 0, 25)] for _ in range(num_letters))
        org = (_randint(rng, 10, w - 8 * num_letters), _randint(rng, 10, h - 10))
        color = tuple(_randint(rng, 0, 255) for _ in range(3))
        out = np.ascontiguousarray(out)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_DUPLEX, font_scale, color, 1, cv2.LINE_AA)
    return out


KERNELS = {
    "gaussian_noise": gaussian_noise, "speckle_noise": speckle_noise, "impulse_noise": impulse_noise,
    "shot_noise": shot_noise, "pixelate": pixelate, "jpeg_compression": jpeg_compression,
    "defocus_blur": defocus_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur, "gaussian_blur": gaussian_blur,
    "brightness_up": brightness, "brightness_down": brightness, "contrast_up": contrast, "contrast_down": contrast,
    "gamma_corr_up": gamma_correction, "gamma_corr_down": gamma_correction, "saturate": saturate,
    "stain_deposit": stain_deposit, "bubble": bubble, "black_corner": black_corner, "characters": characters,
}
