"""augflow.io.load_image on real files written from skimage photographs."""

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data

from augflow.io import ImageDecodeError, MissingImageError, load_image

BACKENDS = ["pillow", "opencv"]
ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return data.chelsea()   # 300 x 451: not square, so a wrong rotation changes the shape


def _save_with_orientation(path, pixels: np.ndarray, orientation: int, **kw) -> None:
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[ORIENTATION] = orientation
    im.save(path, exif=exif, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jpeg_exif_orientation_is_applied(tmp_path, cat, backend):
    # Orientation 6 means "rotate 90 degrees clockwise to display": the camera stored the
    # upright picture rotated counter-clockwise.
    path = tmp_path / "phone.jpg"
    _save_with_orientation(path, np.ascontiguousarray(np.rot90(cat, 1)), 6, quality=95)
    out = load_image(path, backend=backend)
    assert out.shape == cat.shape
    assert np.abs(out.astype(int) - cat).mean() < 3   # JPEG loss only, not a rotated picture


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(tmp_path, cat, backend, orientation):
    path = tmp_path / f"o{orientation}.png"
    _save_with_orientation(path, cat[:40, :60], orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(load_image(path, backend=backend), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grayscale_stays_hw_or_becomes_rgb(tmp_path, backend):
    gray = data.camera()
    path = tmp_path / "camera.png"
    Image.fromarray(gray).save(path)
    np.testing.assert_array_equal(load_image(path, backend=backend), gray)
    rgb = load_image(path, "rgb", backend=backend)
    assert rgb.shape == gray.shape + (3,)
    np.testing.assert_array_equal(rgb[..., 1], gray)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rgba_kept_or_flattened(tmp_path, cat, backend):
    rgba = np.dstack([cat, np.tile(np.linspace(0, 255, cat.shape[1]).astype(np.uint8), (cat.shape[0], 1))])
    path = tmp_path / "cat.png"
    Image.fromarray(rgba).save(path)
    np.testing.assert_array_equal(load_image(path, backend=backend), rgba)
    flat = load_image(path, "rgb", backend=backend, background=255)
    expected = Image.alpha_composite(Image.new("RGBA", rgba.shape[1::-1], (255, 255, 255, 255)),
                                     Image.fromarray(rgba)).convert("RGB")
    assert flat.shape == cat.shape
    assert np.abs(flat.astype(int) - np.asarray(expected)).max() <= 1   # rounding only
    np.testing.assert_array_equal(flat[:, -1], cat[:, -1])   # opaque column untouched
    assert (flat[:, 0] == 255).all()                          # transparent column is background


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_colour_and_gray_stay_uint16(tmp_path, backend, ext):
    rgb16 = data.astronaut().astype(np.uint16) * 257 + 3   # low bits set: lost if reduced to 8 bits
    gray16 = data.camera().astype(np.uint16) * 257 + 3
    cv2.imwrite(str(tmp_path / f"rgb.{ext}"), rgb16[..., ::-1])
    cv2.imwrite(str(tmp_path / f"gray.{ext}"), gray16)
    out = load_image(tmp_path / f"rgb.{ext}", backend=backend)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, rgb16)
    np.testing.assert_array_equal(load_image(tmp_path / f"gray.{ext}", backend=backend), gray16)


def test_gray_mode_matches_pillow_luma(tmp_path, cat):
    path = tmp_path / "cat.png"
    Image.fromarray(cat).save(path)
    expected = np.asarray(Image.fromarray(cat).convert("L")).astype(int)
    out = load_image(path, "gray")
    assert out.shape == cat.shape[:2]
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_rgba_mode_adds_an_opaque_alpha(tmp_path, cat):
    path = tmp_path / "cat.png"
    Image.fromarray(cat).save(path)
    out = load_image(path, "rgba")
    np.testing.assert_array_equal(out[..., :3], cat)
    assert (out[..., 3] == 255).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bytes_decode_like_the_file(tmp_path, cat, backend):
    path = tmp_path / "cat.png"
    Image.fromarray(cat).save(path)
    np.testing.assert_array_equal(load_image(path.read_bytes(), backend=backend), cat)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_file_is_a_decode_error_naming_the_path(tmp_path, cat, backend, ext):
    good = tmp_path / f"good.{ext}"
    Image.fromarray(cat).save(good)
    cut = tmp_path / f"cut.{ext}"
    raw = good.read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageDecodeError, match="cut") as info:
        load_image(cut, backend=backend)
    assert info.value.path == str(cut)
    assert "truncated or corrupt" in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_byte_file_is_a_decode_error(tmp_path, backend):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match=r"empty\.jpg: the file is empty \(0 bytes\)"):
        load_image(path, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_image_is_a_decode_error(tmp_path, backend):
    path = tmp_path / "notes.png"
    path.write_text("not an image at all")
    with pytest.raises(ImageDecodeError, match=r"notes\.png: not an image"):
        load_image(path, backend=backend)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    path = tmp_path / "nowhere.jpg"
    with pytest.raises(FileNotFoundError) as info:
        load_image(path)
    assert isinstance(info.value, MissingImageError)
    assert str(info.value) == f"image file not found: {path}"


def test_bad_bytes_name_their_length():
    with pytest.raises(ImageDecodeError, match=r"<5 bytes>"):
        load_image(b"hello")


def test_unknown_mode_is_rejected_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="auto, rgb, rgba, gray"):
        load_image(b"x", mode="bgr")
