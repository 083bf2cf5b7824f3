"""The loader-ready format: pre-resized images in memory-mapped shards, read by `pipe.compile`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

import augflow
from augflow.io.decode import load_image
from augflow.io.loader_format import LoaderFormatError, LoaderShards, write_loader_dataset

PIPE = {"augflow": 1, "name": "lf", "seed": 5, "sample": [
    {"random_resized_crop": {"size": [40, 40]}}, {"horizontal_flip": {}}, {"normalize": {}}, {"to_tensor": {}}]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two class folders of JPEG photographs, 150 px on the long side (some portrait)."""
    root = tmp_path_factory.mktemp("src")
    names = ("astronaut", "chelsea", "coffee", "rocket", "camera")
    for i in range(7):
        img = getattr(data, names[i % len(names)])()
        img = img if img.ndim == 3 else np.stack([img] * 3, -1)
        img = cv2.resize(img, (150, 110) if i % 2 else (110, 150), interpolation=cv2.INTER_AREA)
        (root / f"c{i % 2}").mkdir(exist_ok=True)
        cv2.imwrite(str(root / f"c{i % 2}" / f"{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def _batches(loader):
    return [{k: v for k, v in b.items()} for b in loader]


def test_compiled_loader_on_stored_jpegs_equals_the_jpeg_path(folder, tmp_path):
    out = tmp_path / "lf"
    write_loader_dataset(folder, out, max_side=96, encoding="jpeg", quality=85, shard_size=3)
    shards = LoaderShards(out)
    files = []          # the stored JPEGs as ordinary files: what the JPEG path reads
    for i in range(len(shards)):
        path = tmp_path / f"{i:03d}.jpg"
        path.write_bytes(bytes(shards[i]["image"]))
        files.append(str(path))
    assert max(load_image(files[0]).shape[:2]) == 96
    pipe = augflow.Pipeline.from_dict(PIPE)
    a = _batches(pipe.compile(str(out), batch_size=4))
    b = _batches(pipe.compile(files, batch_size=4))
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        torch.testing.assert_close(x["image"], y["image"], atol=0, rtol=0)
    assert a[0]["label"].tolist() == [0, 0, 0, 0] and pipe.compile(str(out)).records.num_classes == 2


def test_raw_shards_give_the_output_of_the_same_arrays(folder, tmp_path):
    out = tmp_path / "raw"
    write_loader_dataset(folder, out, max_side=64, encoding="raw", shard_size=4)
    shards = LoaderShards(out)
    arrays = [{"image": np.array(shards[i]["image"]), "label": shards[i]["label"]} for i in range(len(shards))]
    first = load_image(sorted((folder / "c0").glob("*.jpg"))[0], mode="rgb")      # 150 x 110, portrait
    ref = cv2.resize(first, (round(110 * 64 / 150), 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(arrays[0]["image"], ref)
    pipe = augflow.Pipeline.from_dict(PIPE)
    a = _batches(pipe.compile(str(out), batch_size=7))[0]
    b = _batches(pipe.compile(arrays, batch_size=7))[0]
    torch.testing.assert_close(a["image"], b["image"], atol=0, rtol=0)


def test_conversion_resumes_to_the_same_bytes_and_refuses_other_settings(folder, tmp_path):
    out = tmp_path / "resume"
    write_loader_dataset(folder, out, max_side=80, shard_size=2)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "shard-00001.idx.npy").unlink()        # an interrupted run: shard 1 unfinished
    (out / "shard-00003.bin").unlink()
    (out / "shard-00003.idx.npy").unlink()
    calls = []
    write_loader_dataset(folder, out, max_side=80, shard_size=2, progress=calls.append)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sum(calls) == 7
    with pytest.raises(LoaderFormatError, match="other settings"):
        write_loader_dataset(folder, out, max_side=64, shard_size=2)


def test_cli_materialize_format_loader_writes_a_folder_compile_reads(folder, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "cli"
    pipeline = Path(__file__).resolve().parents[2] / "pipelines" / "imagenet_train.yaml"
    cmd = [sys.executable, "-m", "augflow", "materialize", str(pipeline), "--input", str(folder), "--output", str(out),
           "--format", "loader", "--max-side", "72", "--image-format", "raw", "--shard-size", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    shards = LoaderShards(out)
    assert len(shards) == 7 and max(shards[0]["image"].shape[:2]) == 72
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)     # finished: nothing redone
    assert again.returncode == 0 and "wrote 7 images" in again.stdout
