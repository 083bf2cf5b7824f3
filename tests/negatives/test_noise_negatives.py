"""NegVSR noise negatives: bank extraction from flat regions of real photographs, the op, replay."""

import numpy as np
import pytest
from skimage import data
from typer.testing import CliRunner

from augflow import Pipeline, PipelineConfigError
from augflow.negatives.noise import (extract_noise, load_noise_bank, noise_field, rearrange_cells)

LUMA = np.array([0.299, 0.587, 0.114])


def _pipe(bank, **params):
    return Pipeline.from_dict({"augflow": 1, "negatives": [{"noise_negatives": {"noise_bank": str(bank), **params}}]})


def _image():
    return np.ascontiguousarray(data.astronaut()[40:136, 180:300])       # 96 x 120 RGB


@pytest.mark.parametrize("stride", [None, 12])      # tiling windows, and overlapping ones (integral images)
def test_bank_patches_come_from_flat_regions(noisy_frames, stride):
    for name, img in noisy_frames:
        gray = img @ LUMA
        got = extract_noise(img, patch_size=32, stride=stride)
        assert len(got.noise) > 0, name
        for (y, x), noise in zip(got.origins, got.noise[:, 0]):
            window = gray[y:y + 32, x:x + 32]
            assert window.var() < 50 < gray.var()                         # flat, unlike the image
            assert np.allclose((noise * 255) @ LUMA, window - window.mean(), atol=1e-3)   # window minus its mean
        assert np.abs(got.noise.mean(axis=(2, 3))).max() < 1e-5


def test_clip_windows_must_be_flat_and_stable_over_frames():
    frame = np.repeat(data.camera()[:256, :256, None], 3, axis=2)
    still = extract_noise(np.stack([frame, frame]), patch_size=32)
    brighter = frame.astype(np.int16)
    brighter[:128] += 30                                                   # the top half changes mean by 30
    changed = extract_noise(np.stack([frame, np.clip(brighter, 0, 255).astype(np.uint8)]), patch_size=32,
                            max_var_of_mean=50)
    assert still.noise.shape[1] == 2 and len(still.noise) > 0
    assert 0 < len(changed.noise) < len(still.noise)
    assert (changed.origins[:, 0] >= 128).all()                            # only the unchanged half remains


def test_noise_bank_command_writes_a_bank(tmp_path):
    from PIL import Image

    from augflow.cli.main import app

    Image.fromarray(data.camera()).save(tmp_path / "camera.png")
    Image.fromarray(data.rocket()).save(tmp_path / "rocket.png")
    out = tmp_path / "bank.npz"
    result = CliRunner().invoke(app, ["noise-bank", str(tmp_path / "camera.png"), str(tmp_path / "rocket.png"),
                                      "-o", str(out), "--patch-size", "32", "--max-per-input", "20"])
    assert result.exit_code == 0, result.output
    bank = load_noise_bank(out)
    assert bank.noise.shape[1:] == (1, 32, 32, 3) and len(bank) == 40
    assert list(bank.sources) == [str(tmp_path / "camera.png"), str(tmp_path / "rocket.png")]
    missing = CliRunner().invoke(app, ["noise-bank", str(tmp_path / "none.png"), "-o", str(out)])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_same_index_same_noise_and_replay_is_exact(noise_bank_path):
    pipe = _pipe(noise_bank_path, k=2, strength=[0.5, 1.5])
    img = _image()
    a, b = pipe({"image": img}, index=5), pipe({"image": img}, index=5)
    c = pipe({"image": img}, index=6)
    assert np.array_equal(a["image"], b["image"]) and not np.array_equal(a["image"], c["image"])
    again = pipe.replay({"image": img}, a.provenance.to_json())
    assert np.array_equal(again["image"], a["image"])
    for x, y in zip(again["negatives"], a["negatives"]):
        assert np.array_equal(x["value"], y["value"])


def test_positive_gets_the_recorded_bank_noise(noise_bank_path):
    img = _image()
    out = _pipe(noise_bank_path, k=1, strength=1.0)({"image": img}, index=0)
    params = out.provenance[0].params
    used = out["negatives"][0]["info"]["noise"]
    assert used["tiles"] == params["tiles"]["__ndarray__"]
    assert used["bank"] == load_noise_bank(noise_bank_path).fingerprint
    noise = noise_field(load_noise_bank(noise_bank_path), np.array(used["tiles"]), used["frame"], 96, 120, 3)
    expected = np.clip(np.round((img / 255.0 + noise) * 255), 0, 255)
    assert np.abs(out["image"].astype(int) - expected).max() <= 1        # float32 rounding


def test_negative_noise_differs_from_the_positive_noise(noise_bank_path):
    img = _image()
    out = _pipe(noise_bank_path, k=3)({"image": img}, index=2)
    positive = out["image"].astype(int) - img
    assert np.abs(positive).mean() > 0.5
    for neg in out["negatives"]:
        assert neg["op"] == "noise_negatives" and neg["kind"] == "image" and neg["source"] == "image"
        negative = neg["value"].astype(int) - img
        assert neg["value"].shape == img.shape
        assert np.abs(negative - positive).mean() > 0.5                  # same bank noise, rearranged
        assert abs(negative.std() - positive.std()) < 0.5 * positive.std()   # ... of similar strength


def test_only_shuffling_still_changes_the_noise(noise_bank_path):
    img = _image()
    out = _pipe(noise_bank_path, k=1, augment=["shuffle"], add_to_image=False)({"image": img}, index=1)
    assert np.array_equal(out["image"], img)
    assert not np.array_equal(out["negatives"][0]["value"], img)


def test_rearrange_cells_rotates_flips_and_moves_cells():
    noise = np.arange(4 * 4, dtype=np.float32).reshape(4, 4, 1)
    out = rearrange_cells(noise, 2, rot=np.array([1, 0, 0, 0]), flip=np.array([0, 1, 2, 0]),
                          perm=np.array([3, 1, 2, 0]))
    cells = [noise[:2, :2], noise[:2, 2:], noise[2:, :2], noise[2:, 2:]]
    assert np.array_equal(out[2:, 2:], np.rot90(cells[0]))                # cell 0 rotated, moved to slot 3
    assert np.array_equal(out[:2, 2:], cells[1][:, ::-1])                  # cell 1 flipped left-right
    assert np.array_equal(out[2:, :2], cells[2][::-1])                     # cell 2 flipped up-down
    assert np.array_equal(out[:2, :2], cells[3])                           # cell 3 moved to slot 0


def test_gray_images_get_gray_noise(noise_bank_path):
    gray = np.ascontiguousarray(data.camera()[100:164, 100:180])
    out = _pipe(noise_bank_path, k=1)({"image": gray}, index=0)
    assert out["image"].shape == gray.shape and not np.array_equal(out["image"], gray)


def test_replay_with_another_bank_is_refused(noise_bank_path, tmp_path, noisy_frames):
    from augflow.negatives.noise import build_noise_bank

    img = _image()
    out = _pipe(noise_bank_path, k=1)({"image": img}, index=0)
    other = build_noise_bank(noisy_frames[:1], patch_size=32, max_patches=5).save(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="replay with that bank"):
        _pipe(other, k=1).replay({"image": img}, out.provenance.to_json())


def test_missing_bank_is_reported_at_load(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("augflow: 1\nnegatives:\n  - noise_negatives: {noise_bank: nowhere.npz}\n")
    with pytest.raises(PipelineConfigError,
                       match=r"p.yaml:3:.*noise_negatives.*noise bank 'nowhere.npz' does not exist"):
        Pipeline.from_yaml(path)
