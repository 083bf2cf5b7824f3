"""Writers of materialized outputs: safe paths, atomic writes, lossless deterministic encodings."""

import io

import numpy as np
import pytest
from PIL import Image

from augflow import Pipeline
from augflow.io.writers import (TMP_MARK, UnsafePathError, atomic_write, encode_array, encode_sample,
                                remove_temp_files, safe_join, safe_name)


@pytest.mark.parametrize("rel", ["../x.png", "a/../../x.png", "/etc/passwd"])
def test_safe_join_refuses_paths_outside_the_root(tmp_path, rel):
    with pytest.raises(UnsafePathError, match="outside the output folder"):
        safe_join(tmp_path / "out", rel)


def test_safe_join_refuses_a_symlink_that_leads_out(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path / "out", "data/x.png")


@pytest.mark.parametrize("text,name", [("../../etc", "_.._etc"), ("/abs/path", "_abs_path"), ("..", "_"),
                                       ("", "_"), ("tabby cat", "tabby cat"), ("a\\b:c", "a_b_c")])
def test_safe_name_is_one_harmless_component(text, name):
    assert safe_name(text) == name


def test_atomic_write_leaves_no_temp_and_leftovers_are_removed(tmp_path):
    atomic_write(tmp_path / "a" / "x.bin", b"data")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.bin"]
    (tmp_path / "a" / f"y.tar{TMP_MARK}123").write_bytes(b"half")    # what a kill -9 leaves
    assert remove_temp_files(tmp_path) == 1
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.bin"]


def test_uint8_images_are_lossless_png_and_floats_exact_npy(astronaut, camera):
    ext, data = encode_array(astronaut, "image")
    assert ext == "png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), astronaut)
    ext, data = encode_array(camera[:, :, None], "image")
    assert ext == "png" and np.asarray(Image.open(io.BytesIO(data))).shape == camera.shape
    floats = astronaut.astype(np.float32) / 7.0
    ext, data = encode_array(floats, "image")
    assert ext == "npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(data)), floats)
    assert encode_array(floats, "image") == (ext, data)          # deterministic bytes


def test_views_become_separate_columns(astronaut):
    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{"horizontal_flip": {"p": 0.5}}, {"views": 2},
                                                        {"vertical_flip": {"p": 0.5}}]})
    out = pipe({"image": astronaut, "label": 1, "text": "an astronaut"}, index=0)
    files, meta = encode_sample(out)
    assert [c for c, _, _ in files] == ["view0_image", "view1_image"]
    assert meta == {"view0_text": "an astronaut", "view1_text": "an astronaut"}   # text travels with views
