"""night: exposure, white balance and Poisson-Gaussian noise behave as the physics says."""

from __future__ import annotations

import numpy as np
import pytest

from augflow import Pipeline
from augflow.generative.night import kelvin_to_rgb, linear_to_srgb, night, srgb_to_linear, white_balance_gains

CLEAN = dict(temperature=6500.0, gamma=1.0, photons=0.0, read_noise=0.0, glow=0.0, glow_threshold=0.8,
             glow_radius=0.02, noise_seed=0)


def _linear(img: np.ndarray) -> np.ndarray:
    return srgb_to_linear(img.astype(np.float32) / 255.0)


def test_exposure_drop_scales_linear_light_by_two_to_the_stops(astronaut):
    out = night(astronaut, exposure=-2.0, **CLEAN)
    ratio = _linear(out).mean() / _linear(astronaut).mean()
    assert ratio == pytest.approx(0.25, rel=0.03)        # 8-bit rounding of dark pixels costs a little


def test_low_colour_temperature_turns_the_light_orange(astronaut):
    warm = night(astronaut, exposure=0.0, **{**CLEAN, "temperature": 2500.0})
    lin_in, lin_out = _linear(astronaut), _linear(warm)
    assert (lin_out[..., 0].mean() / lin_out[..., 2].mean()) > 2 * (lin_in[..., 0].mean() / lin_in[..., 2].mean())
    np.testing.assert_allclose(white_balance_gains(6500.0), 1.0, atol=1e-6)
    assert kelvin_to_rgb(2000.0)[2] < kelvin_to_rgb(10000.0)[2]


def test_shot_noise_variance_is_signal_over_photons():
    flat = np.full((128, 128, 3), 0.5, np.float32)       # float in, no 8-bit quantisation
    photons = 50.0
    out = night(flat, exposure=-1.0, **{**CLEAN, "photons": photons})
    lin = srgb_to_linear(out)
    signal = float(srgb_to_linear(np.float32(0.5))) * 0.5
    assert lin.mean() == pytest.approx(signal, rel=0.02)
    assert lin.var() == pytest.approx(signal / photons, rel=0.1)    # Poisson: variance = mean / gain


def test_read_noise_is_gaussian_with_the_given_sigma():
    flat = np.full((128, 128, 3), 0.6, np.float32)
    lin = srgb_to_linear(night(flat, exposure=0.0, **{**CLEAN, "read_noise": 0.01}))
    assert lin.std() == pytest.approx(0.01, rel=0.1)


def test_glow_brightens_the_surroundings_of_bright_spots():
    img = np.zeros((64, 64, 3), np.uint8)
    img[30:34, 30:34] = 255
    base = night(img, exposure=-2.0, **CLEAN)
    glowing = night(img, exposure=-2.0, **{**CLEAN, "glow": 1.0, "glow_radius": 0.05})
    assert glowing[32, 40].mean() > base[32, 40].mean() + 5 and glowing[2, 2].mean() <= base[2, 2].mean() + 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_layout_and_dtype_are_kept_and_replay_is_exact(astronaut, camera, dtype):
    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{"night": {"glow": [0.2, 0.5]}}]})
    for img in (astronaut, camera):
        x = img.astype(dtype) * (257 if dtype == np.uint16 else 1)
        x = x / 255.0 if dtype == np.float32 else x
        out = pipe({"image": x.astype(dtype)}, seed=3)
        assert out["image"].shape == img.shape and out["image"].dtype == dtype
        again = pipe.replay({"image": x.astype(dtype)}, out.provenance.to_json())
        np.testing.assert_array_equal(again["image"], out["image"])


def test_srgb_round_trip():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)


def test_a_reversed_range_is_a_load_time_error():
    from augflow import PipelineConfigError

    with pytest.raises(PipelineConfigError, match="'exposure'.*low <= high"):
        Pipeline.from_dict({"augflow": 1, "sample": [{"night": {"exposure": [-1, -3]}}]})
