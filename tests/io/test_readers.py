"""Loader inputs: image folders, path lists, CSV/JSONL manifests, datasets of samples."""

from __future__ import annotations

import json

import cv2
import pytest

from augflow.io.readers import ReaderError, as_records


@pytest.fixture
def folder(tmp_path, astronaut, chelsea):
    for cls, img in (("dog", astronaut), ("cat", chelsea), ("cat", astronaut)):
        (tmp_path / cls).mkdir(exist_ok=True)
        n = len(list((tmp_path / cls).iterdir()))
        cv2.imwrite(str(tmp_path / cls / f"{n}.jpg"), img)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_labels_are_sorted_class_folder_indices(folder):
    recs = as_records(str(folder))
    assert recs.classes == ["cat", "dog"] and recs.num_classes == 2
    assert [r["label"] for r in recs] == [0, 0, 1]
    assert all(r["image"].endswith(".jpg") for r in recs)


def test_csv_manifest_resolves_paths_and_maps_string_labels(folder):
    (folder / "train.csv").write_text("path,class,weight\ndog/0.jpg,dog,1.5\ncat/0.jpg,cat,2\n")
    recs = as_records(folder / "train.csv")
    assert recs.classes == ["cat", "dog"]
    assert recs[0] == {"image": str(folder / "dog/0.jpg"), "label": 1, "weight": "1.5"}


def test_jsonl_manifest_keeps_integer_labels_and_extra_fields(folder):
    rows = [{"image": str(folder / "dog/0.jpg"), "label": 3, "caption": "a person"}]
    (folder / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    recs = as_records(str(folder / "m.jsonl"))
    assert recs.classes is None and recs[0]["label"] == 3 and recs[0]["caption"] == "a person"


def test_manifest_without_an_image_column_says_which_columns_it_found(folder):
    (folder / "bad.csv").write_text("name,label\nx.jpg,1\n")
    with pytest.raises(ReaderError, match="no image column.*found name, label"):
        as_records(folder / "bad.csv")


def test_dataset_of_tuples_and_list_of_paths(astronaut):
    class Tuples:
        classes = ["a", "b"]

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return astronaut, i

    recs = as_records(Tuples())
    assert recs.num_classes == 2 and recs[1]["label"] == 1 and recs[1]["image"] is astronaut
    assert as_records(["x.jpg", "y.png"])[1] == {"image": "y.png"}
