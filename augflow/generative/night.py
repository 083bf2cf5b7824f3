"""`night`: a physically based low-light rendering of a day photograph, without a model.

For users without a trained day-to-night generator, and the default night domain of the trainer's
tests and example. In linear light (sRGB decoded): a white-balance shift towards a low colour
temperature (sodium and tungsten street light) or a high one (moonlight), an exposure drop in
stops, a contrast gamma, Poisson-Gaussian sensor noise (shot noise from `photons` electrons at
full white, Gaussian read noise), optional glow (veiling bloom) around the day image's brightest
spots, then sRGB encoding. The noise is drawn from a recorded seed, so replay is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from augflow.ops.base import Op, Schema
from augflow.registry import register
from augflow.sample import Sample

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Relative RGB of a black body at `kelvin` (Tanner Helland's fit to CIE data), in [0, 1]."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    return np.clip(np.array([r, g, b], np.float32) / 255.0, 1e-3, 1.0)


def white_balance_gains(kelvin: float, reference: float = 6500.0) -> np.ndarray:
    """Per-channel gains that make a `reference`-lit scene look lit at `kelvin` (luminance kept)."""
    gains = kelvin_to_rgb(kelvin) / kelvin_to_rgb(reference)
    return (gains / float(gains @ _LUMA)).astype(np.float32)


def night(image: np.ndarray, *, exposure: float, temperature: float, gamma: float, photons: float,
          read_noise: float, glow: float, glow_threshold: float, glow_radius: float, noise_seed: int) -> np.ndarray:
    """The kernel: an augflow image (gray/RGB/RGBA, uint8/uint16/float) rendered at night, same layout."""
    import cv2

    scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(image.dtype.type, 1.0)
    arr = image.astype(np.float32) / scale
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[:, :, None]
    alpha = arr[:, :, 3:] if arr.shape[2] == 4 else None
    color = arr[:, :, :3] if arr.shape[2] >= 3 else np.repeat(arr[:, :, :1], 3, axis=2)
    lin = srgb_to_linear(np.clip(color, 0.0, 1.0))
    bright = None
    if glow > 0:   # light sources and highlights of the day image bloom at night
        luma = lin @ _LUMA
        bright = np.clip((luma - glow_threshold) / max(1.0 - glow_threshold, 1e-6), 0.0, 1.0)
    lin = lin * white_balance_gains(temperature)
    lin = np.power(np.clip(lin, 0.0, None), gamma) * (2.0 ** exposure)
    if bright is not None and bright.any():
        sigma = max(glow_radius * float(np.hypot(*lin.shape[:2])), 0.5)
        halo = cv2.GaussianBlur(bright, (0, 0), sigma)
        warm = kelvin_to_rgb(min(temperature, 3500.0))
        lin = lin + glow * halo[:, :, None] * warm
    rng = np.random.Generator(np.random.Philox(int(noise_seed)))
    if photons > 0:
        lin = rng.poisson(np.clip(lin, 0.0, None) * photons).astype(np.float32) / photons
    if read_noise > 0:
        lin = lin + rng.normal(0.0, read_noise, lin.shape).astype(np.float32)
    out = linear_to_srgb(lin)
    if arr.shape[2] < 3:
        out = (out @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
        if arr.shape[2] == 2:
            out = np.concatenate([out, arr[:, :, 1:]], axis=2)
    elif alpha is not None:
        out = np.concatenate([out, alpha], axis=2)
    if scale != 1.0:
        out = np.round(out * scale).astype(image.dtype)
    else:
        out = out.astype(image.dtype)
    return out[:, :, 0] if squeeze else out


@register("night", targets={"image"}, family="generative")
class Night(Op):
    """Physically based night rendering: white balance, exposure drop, gamma, sensor noise, glow.

    No model: the stand-in for `day_to_night` without a trained generator. Ranges are drawn per
    sample; the noise comes from a recorded seed.
    """

    class Params(Schema):
        exposure: tuple[float, float] = Field((-4.0, -2.0), description="Exposure change in stops (EV), negative.")
        temperature: tuple[float, float] = Field((2000.0, 7500.0), description="Light colour temperature in K "
                                                 "the day image is re-lit with (it is taken as 6500 K): 2000 "
                                                 "sodium street lamps, 3000 tungsten, above 6500 the bluish "
                                                 "look of moonlit scenes.")
        gamma: tuple[float, float] = Field((1.0, 1.3), description="Extra gamma on linear light (>1 crushes "
                                           "mid-tones, as night scenes lack fill light).")
        photons: tuple[float, float] = Field((30.0, 300.0), description="Electrons at full white after the drop; "
                                             "fewer = stronger shot noise (0 disables).")
        read_noise: tuple[float, float] = Field((0.002, 0.01), description="Gaussian read-noise sigma, linear units.")
        glow: tuple[float, float] = Field((0.0, 0.0), description="Strength of bloom around bright spots (0: off).")
        glow_threshold: float = Field(0.8, ge=0.0, lt=1.0, description="Linear luminance where glow starts.")
        glow_radius: float = Field(0.02, gt=0.0, le=0.5, description="Glow blur sigma as a fraction of the diagonal.")

        @field_validator("exposure", "temperature", "gamma", "photons", "read_noise", "glow")
        @classmethod
        def _ordered(cls, value: tuple[float, float], info) -> tuple[float, float]:
            low, high = value
            if low > high:
                raise ValueError("must be a [low, high] range with low <= high")
            limits = {"exposure": (-20.0, 0.0), "temperature": (1000.0, 40000.0), "gamma": (0.2, 5.0),
                      "photons": (0.0, 1e7), "read_noise": (0.0, 1.0), "glow": (0.0, 10.0)}[info.field_name]
            if low < limits[0] or high > limits[1]:
                raise ValueError(f"must lie within [{limits[0]}, {limits[1]}]")
            return value

    def sample_params(self, rng: np.random.Generator, sample: Sample) -> dict[str, Any]:
        p = self.params
        return {
            "exposure": float(rng.uniform(*p.exposure)),
            "temperature": float(rng.uniform(*p.temperature)),
            "gamma": float(rng.uniform(*p.gamma)),
            "photons": float(rng.uniform(*p.photons)),
            "read_noise": float(rng.uniform(*p.read_noise)),
            "glow": float(rng.uniform(*p.glow)),
            "noise_seed": int(rng.integers(0, 2**63 - 1)),
        }

    def apply_batch(self, batch: dict, params: list, ctx: Any) -> dict:
        """The batch stage's entry (per element on the CPU: the kernel is numpy)."""
        from augflow.generative import batching

        return batching.tensor_batch(self, batch, params, ctx)

    def apply_samples(self, samples: list[Sample], params_list: list[dict[str, Any]]) -> list[Sample]:
        return [self.apply(s, **p) for s, p in zip(samples, params_list)]

    def apply(self, sample: Sample, **params: Any) -> Sample:
        out = sample.copy()
        for name in sample.fields_of_kind("image"):
            if isinstance(sample[name], np.ndarray):
                out[name] = night(sample[name], glow_threshold=self.params.glow_threshold,
                                  glow_radius=self.params.glow_radius, **params)
        return out


__all__ = ["Night", "night", "srgb_to_linear", "linear_to_srgb", "kelvin_to_rgb", "white_balance_gains"]
