"""`augflow shifts`: validation images of the held-out families, the split and the training YAML."""

import json

from augflow import Pipeline
from augflow.steps import iter_ops
from cli_helpers import run_cli


def test_shifts_writes_fold_validation_set_split_and_train_pipeline(photos, tmp_path):
    out = tmp_path / "shifts"
    run_cli("shifts", photos, "--out", out, "--k", "3", "--fold", "1", "--seed", "0", check=True)
    split = json.loads((out / "split.json").read_text())
    fold = split["folds"][1]
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {r["family"] for r in rows} == set(fold["val"]) and len(rows) == 6 * len(fold["val"])
    assert all((out / r["image"]).is_file() for r in rows)
    assert {r["label"] for r in rows} == {0, 1, 2}
    train = Pipeline.from_yaml(out / "train.yaml")
    held_out = {name for fam in fold["val"] for op in split["families"][fam] for name in op}
    assert not {s.name for s in iter_ops(train.spec.sample)} & held_out


def test_shifts_bad_fold_is_an_error(photos, tmp_path):
    proc = run_cli("shifts", photos, "--out", tmp_path, "--k", "2", "--fold", "5")
    assert proc.returncode == 1 and "--fold must be in [0, 1]" in proc.stderr
