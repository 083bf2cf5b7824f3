"""Bad data in a compiled loader: errors name the sample, `on_error="skip"` drops and lists it,
one pixel limit shared with the CLI, a new augmentation each iteration without set_epoch."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch

import augflow
from augflow.io.sources import DEFAULT_MAX_PIXELS

PIPE = {"augflow": 1, "name": "small", "seed": 3, "sample": [
    {"random_resized_crop": {"size": [32, 32], "scale": [0.3, 1.0]}},
    {"horizontal_flip": {"p": 0.5}},
    {"normalize": {}},
    {"to_tensor": {}},
]}


@pytest.fixture()
def folder_with_truncated(jpeg_folder, tmp_path) -> tuple[str, str]:
    """A copy of the 12-image folder where one JPEG is cut after 40% of its bytes."""
    root = tmp_path / "data"
    shutil.copytree(jpeg_folder, root)
    bad = sorted(root.rglob("*.jpg"))[4]
    raw = bad.read_bytes()
    bad.write_bytes(raw[: int(len(raw) * 0.4)])
    return str(root), str(bad)


def by_index(loader) -> dict[int, torch.Tensor]:
    return {i: img for batch in loader for i, img in zip(batch["_index"].tolist(), batch["image"])}


@pytest.mark.parametrize("workers, executor", [(0, "auto"), (2, "processes"), (2, "threads")])
def test_truncated_jpeg_error_names_the_file(folder_with_truncated, workers, executor):
    root, bad = folder_with_truncated
    loader = augflow.Pipeline.from_dict(PIPE).compile(root, batch_size=4, num_workers=workers, executor=executor)
    with pytest.raises(Exception) as info:
        list(loader)
    assert bad in str(info.value)
    assert "on_error='skip'" in str(info.value)
    if workers == 0:
        from augflow.compile.backends.torch_loader import BadSampleError
        assert isinstance(info.value, BadSampleError)


@pytest.mark.parametrize("workers, executor", [(0, "auto"), (2, "processes"), (2, "threads")])
def test_skip_drops_the_sample_records_it_and_warns_once_per_epoch(folder_with_truncated, jpeg_folder, workers,
                                                                    executor):
    root, bad = folder_with_truncated
    pipe = augflow.Pipeline.from_dict(PIPE)
    loader = pipe.compile(root, batch_size=4, num_workers=workers, on_error="skip", executor=executor)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader)
    sizes = [len(b["image"]) for b in batches]
    assert sizes == [4, 3, 4]                               # the bad sample's batch is one short
    assert all(b["image"].shape[1:] == (3, 32, 32) and len(b["label"]) == len(b["image"]) for b in batches)
    assert len(loader.errors) == 1
    err = loader.errors[0]
    assert (err.index, err.epoch, err.source) == (4, 0, bad)
    assert "JPEG" in err.reason or "truncated" in err.reason or "Premature" in err.reason
    summaries = [w for w in caught if "skipped 1 bad sample" in str(w.message)]
    assert len(summaries) == 1 and "epoch 0" in str(summaries[0].message)
    # the samples that loaded are exactly those of a clean loader
    clean = by_index(pipe.compile(jpeg_folder, batch_size=4))
    got = {i: img for b in batches for i, img in zip(b["_index"].tolist(), b["image"])}
    assert set(got) == set(range(12)) - {4}
    assert all(torch.equal(got[i], clean[i]) for i in got)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(loader)                                        # next epoch: counted again, listed with its epoch
    assert [e.epoch for e in loader.errors] == [0, 1]
    assert sum("epoch 1: skipped 1 bad sample" in str(w.message) for w in caught) == 1


def test_on_error_value_is_checked(jpeg_paths):
    with pytest.raises(ValueError, match="on_error must be one of 'raise', 'skip'"):
        augflow.Pipeline.from_dict(PIPE).compile(jpeg_paths[:2], on_error="ignore")


def _with_size(jpeg: Path, out: Path, h: int, w: int) -> str:
    """The JPEG with its frame header claiming h x w (what a huge file's header says, without its bytes)."""
    raw = bytearray(jpeg.read_bytes())
    sof = next(i for i in range(2, len(raw) - 1) if raw[i] == 0xFF and raw[i + 1] in (0xC0, 0xC1, 0xC2))
    raw[sof + 5:sof + 7] = h.to_bytes(2, "big")
    raw[sof + 7:sof + 9] = w.to_bytes(2, "big")
    out.write_bytes(bytes(raw))
    return str(out)


def test_loader_refuses_images_over_the_clis_pixel_limit(jpeg_paths, tmp_path):
    from augflow.compile.backends.torch_loader import BadSampleError
    huge = _with_size(Path(jpeg_paths[0]), tmp_path / "huge.jpg", 12000, 12000)
    pipe = augflow.Pipeline.from_dict(PIPE)
    with pytest.raises(BadSampleError, match=r"huge\.jpg.*12000x12000.*over the limit of 89,478,485"):
        list(pipe.compile([huge], batch_size=1))
    assert 12000 * 12000 > DEFAULT_MAX_PIXELS


def test_pixel_limit_is_configurable_and_the_same_default_as_the_cli(jpeg_paths):
    import inspect

    from augflow.cli.materialize import materialize
    from augflow.compile.backends.torch_loader import BadSampleError
    cli_default = inspect.signature(materialize).parameters["max_pixels"].default
    assert cli_default == DEFAULT_MAX_PIXELS
    pipe = augflow.Pipeline.from_dict(PIPE)
    with pytest.raises(BadSampleError, match="over the limit of 5,000"):
        list(pipe.compile(jpeg_paths[:2], batch_size=2, max_pixels=5000))    # the photos are 120x90
    assert len(by_index(pipe.compile(jpeg_paths[:2], batch_size=2, max_pixels=120 * 90))) == 2


@pytest.mark.parametrize("workers", [0, 1])
def test_each_iteration_is_a_new_epoch_without_set_epoch(jpeg_paths, workers):
    pipe = augflow.Pipeline.from_dict(PIPE)
    loader = pipe.compile(jpeg_paths[:4], batch_size=4, num_workers=workers)
    first, second = by_index(loader), by_index(loader)
    assert not torch.equal(first[0], second[0])             # a new augmentation
    assert loader.epoch == 1
    ref = pipe.compile(jpeg_paths[:4], batch_size=4)        # epoch e is the same in every run
    ref.set_epoch(1)
    assert all(torch.equal(second[i], t) for i, t in by_index(ref).items())
    loader.set_epoch(0)                                     # set_epoch still chooses the epoch
    assert all(torch.equal(first[i], t) for i, t in by_index(loader).items())
    third = by_index(loader)                                # and iteration continues from it
    assert all(torch.equal(second[i], t) for i, t in third.items())


def test_dali_loader_also_advances_the_epoch_without_set_epoch(jpeg_paths):
    pytest.importorskip("nvidia.dali", reason="DALI is the 'dali' extra")
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "seed": 1, "sample": PIPE["sample"][:3]})
    loader = pipe.compile(jpeg_paths[:4], batch_size=4, backend="dali")
    first, second = by_index(loader), by_index(loader)
    assert loader.epoch == 1 and not torch.equal(first[0], second[0])
    loader.set_epoch(1)
    assert all(torch.equal(second[i], t) for i, t in by_index(loader).items())
    loader.close()


def test_dali_refuses_skip_instead_of_ignoring_it(jpeg_paths):
    pytest.importorskip("nvidia.dali", reason="DALI is the 'dali' extra")
    from augflow.compile.backends import BackendError
    with pytest.raises(BackendError, match="on_error='skip' is not supported by the dali backend"):
        augflow.Pipeline.from_dict(PIPE).compile(jpeg_paths[:2], backend="dali", on_error="skip")


def test_in_memory_samples_are_named_by_index_and_dataset(jpeg_paths):
    from augflow.compile.backends.torch_loader import BadSampleError
    from augflow.compile.decoding import decode

    good = decode(jpeg_paths[0])
    samples = [{"image": good, "caption": "a dog."}, {"image": good[None], "caption": "a batch."},
               {"image": good, "caption": "a cat."}]
    pipe = augflow.Pipeline.from_dict(PIPE)
    with pytest.raises(BadSampleError, match=r"sample 1 \(list\[1\]\)"):
        list(pipe.compile(samples, batch_size=3))
    loader = pipe.compile(samples, batch_size=3, on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1 bad sample of 3"):
        (batch,) = list(loader)
    assert batch["_index"].tolist() == [0, 2] and batch["caption"] == ["a dog.", "a cat."]
    assert [(e.index, e.source) for e in loader.errors] == [(1, "list[1]")]
