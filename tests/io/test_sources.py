"""Dataset sources of the CLI: listing is deterministic; bad inputs name themselves."""

import json

import numpy as np
import pytest
from PIL import Image

from augflow.io import ImageDecodeError
from augflow.io.sources import FileRef, Item, SourceError, load_item, open_source


@pytest.fixture
def folder(tmp_path, astronaut, chelsea):
    for cls, name, img in [("b_space", "astro.png", astronaut), ("a_cat", "cat.png", chelsea),
                           ("a_cat", "cat2.jpg", chelsea)]:
        (tmp_path / cls).mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / cls / name)
    return tmp_path


def test_folder_classes_come_from_sorted_subfolders(folder):
    src = open_source(folder)
    assert src.classes == ["a_cat", "b_space"]
    assert [(it.key, it.label) for it in src.items] == [("a_cat/cat.png", 0), ("a_cat/cat2.jpg", 0),
                                                          ("b_space/astro.png", 1)]
    assert open_source(folder).fingerprint() == src.fingerprint()


def test_loaded_item_is_the_decoded_image_with_its_label(folder, astronaut):
    src = open_source(folder)
    sample = load_item(src.items[2], {})
    np.testing.assert_array_equal(sample["image"], astronaut)
    assert sample["label"] == 1


def test_malformed_jsonl_line_is_named(tmp_path):
    manifest = tmp_path / "list.jsonl"
    manifest.write_text('{"image": "a.png"}\n{"image": "b.png",\n')
    with pytest.raises(SourceError, match=r"list.jsonl:2: not valid JSON"):
        open_source(manifest)


def test_string_labels_become_sorted_class_indices(tmp_path):
    manifest = tmp_path / "list.jsonl"
    manifest.write_text("".join(json.dumps({"path": f"{i}.png", "label": lab}) + "\n"
                                for i, lab in enumerate(["dog", "cat", "dog"])))
    src = open_source(manifest)
    assert src.classes == ["cat", "dog"]
    assert [(it.label, it.label_name) for it in src.items] == [(1, "dog"), (0, "cat"), (1, "dog")]


def test_a_dataset_dict_asks_for_one_split(tmp_path):
    (tmp_path / "dataset_dict.json").write_text('{"splits": ["train"]}')
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "state.json").write_text("{}")
    with pytest.raises(SourceError, match="point --input at one split folder.*train"):
        open_source(tmp_path)


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"not an image", "not an image"),
                                            (None, "not found")])
def test_bad_inputs_raise_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((ImageDecodeError, FileNotFoundError), match=reason) as err:
        load_item(Item("bad.png", {"image": FileRef(str(path))}), {})
    assert str(path) in str(err.value)


def test_absurd_sizes_are_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (3000, 2000)).save(path)
    with pytest.raises(ImageDecodeError, match="over the limit of 1,000,000"):
        load_item(Item("big.png", {"image": FileRef(str(path))}), {}, max_pixels=1_000_000)


def test_hf_save_to_disk_folder_is_read_without_datasets(tmp_path, astronaut, chelsea):
    datasets = pytest.importorskip("datasets", reason="makes the save_to_disk folder to read")
    ds = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(astronaut), Image.fromarray(chelsea)], "label": [1, 0], "caption": ["a", "b"]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "person"]),
                                    "caption": datasets.Value("string")}))
    ds.save_to_disk(str(tmp_path / "hf"))
    src = open_source(tmp_path / "hf")
    assert src.kind == "hf" and src.classes == ["cat", "person"]
    assert [(it.label, it.label_name) for it in src.items] == [(1, "person"), (0, "cat")]
    sample = load_item(src.items[0], {}, image_columns=src.image_columns)
    np.testing.assert_array_equal(sample["image"], astronaut)
    assert sample["caption"] == "a"
