"""`augflow materialize`: outputs, manifest, formats, inputs, bad inputs, determinism, safety."""

import csv
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from augflow import Pipeline
from augflow.io import load_image
from augflow.io import engines
from augflow.io import materialize as mat
from cli_helpers import PIPELINES, files_of, run_cli

SMALL = PIPELINES / "small.yaml"


def _manifest(out):
    if (out / "manifest.jsonl").exists():
        return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    return [{**r, "fields": json.loads(r["fields"]), "provenance": json.loads(r["provenance"])} for r in rows]


def test_folder_output_is_the_pipeline_output_and_replays_from_the_manifest(photos, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("materialize", SMALL, "--input", photos, "--output", out, "--copies", "2", "--manifest", "jsonl",
                   check=True)
    assert "wrote 12 of 12 outputs (6 inputs x 2 copies)" in proc.stdout
    rows = _manifest(out)
    assert [(r["source_index"], r["copy"]) for r in rows] == [(i, c) for i in range(6) for c in range(2)]
    pipe = Pipeline.from_yaml(SMALL)
    for row in rows:
        assert row["status"] == "ok" and row["files"][0].startswith(f"data/{row['label_name']}/")
        written = np.asarray(Image.open(out / row["files"][0]))
        source = {"image": load_image(photos / row["source"]), "label": row["label"]}
        live = pipe(source, index=row["source_index"], epoch=row["copy"])     # copy c of item i = epoch c, index i
        np.testing.assert_array_equal(written, live["image"])
        np.testing.assert_array_equal(written, pipe.replay(source, row["provenance"])["image"])
        assert row["provenance"] == [e.to_dict() for e in live.provenance]


def test_outputs_are_byte_identical_whatever_the_worker_count(photos, tmp_path):
    # The job API the command calls, in this process: one CLI start fewer per run; same code path.
    for workers in (1, 2):
        job = mat.plan(mat.JobOptions(str(SMALL), str(photos), str(tmp_path / f"w{workers}"), copies=3,
                                      format="webdataset", shard_size=4))
        engines.run(job, workers=workers)
    one, two = files_of(tmp_path / "w1"), files_of(tmp_path / "w2")
    assert sorted(one) == sorted(two) and len([f for f in one if f.endswith(".tar")]) == 5
    assert one == two


def test_webdataset_shards_read_back_with_webdataset(photos, tmp_path):
    wds = pytest.importorskip("webdataset")
    out = tmp_path / "out"
    run_cli("materialize", SMALL, "-i", photos, "-o", out, "-f", "webdataset", "--shard-size", "4", check=True)
    shards = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("rgb8").to_tuple("png", "cls", "json"))
    assert len(samples) == 6
    assert [s[1] for s in samples] == [r["label"] for r in _manifest(out)]
    assert all(img.shape == (48, 48, 3) for img, _, _ in samples)
    assert samples[0][2]["provenance"][0]["op"] == "random_resized_crop"


def test_parquet_output_holds_encoded_images(photos, tmp_path):
    out = tmp_path / "out"
    run_cli("materialize", SMALL, "-i", photos, "-o", out, "-f", "parquet", "-k", "2", check=True)
    table = pq.read_table(out / "data").to_pylist()
    assert len(table) == 12
    img = np.asarray(Image.open(io.BytesIO(table[0]["image"])))
    assert img.shape == (48, 48, 3)
    assert json.loads(table[0]["provenance"])[0]["op"] == "random_resized_crop"


def test_hf_output_opens_with_load_from_disk_and_is_a_valid_input(photos, tmp_path):
    datasets = pytest.importorskip("datasets", reason="`datasets` checks the save_to_disk layout")
    out = tmp_path / "hf"
    run_cli("materialize", SMALL, "-i", photos, "-o", out, "-f", "hf", "--shard-size", "4", check=True)
    ds = datasets.load_from_disk(str(out))
    assert len(ds) == 6 and ds.features["label"].names == ["cat", "space", "things"]
    assert ds[0]["image"].size == (48, 48) and ds[5]["label"] == 2
    again = tmp_path / "again"        # an HF folder is also an input
    run_cli("materialize", SMALL, "-i", out, "-o", again, "--manifest", "jsonl", check=True)
    assert [r["label"] for r in _manifest(again)] == ds["label"]


def test_csv_and_jsonl_manifests_with_boxes_and_text(photos, tmp_path):
    csv_path = tmp_path / "list.csv"
    with csv_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "text"])
        w.writerow([str(photos / "cat" / "chelsea.jpg"), "cat", "a cat"])
        w.writerow([str(photos / "space" / "rocket.jpg"), "rocket", "a rocket"])
    run_cli("materialize", SMALL, "-i", csv_path, "-o", tmp_path / "c", "--manifest", "jsonl", check=True)
    rows = _manifest(tmp_path / "c")
    assert [(r["label_name"], r["fields"]["text"]) for r in rows] == [("cat", "a cat"), ("rocket", "a rocket")]

    mask = np.zeros((80, 80), np.uint8)
    mask[20:50, 10:40] = 1
    Image.fromarray(mask).save(tmp_path / "mask.png")
    jsonl = tmp_path / "boxes.jsonl"
    jsonl.write_text(json.dumps({"image": "photos/space/astronaut.png", "mask": "mask.png",
                                 "bboxes": [[10, 10, 50, 60]], "labels": [3]}) + "\n")
    (tmp_path / "photos").symlink_to(photos)          # paths are relative to the manifest's folder
    out = tmp_path / "j"
    run_cli("materialize", PIPELINES / "detection.yaml", "-i", jsonl, "-o", out, "-k", "2", "--manifest", "jsonl",
            check=True)
    pipe = Pipeline.from_yaml(PIPELINES / "detection.yaml")
    sample = {"image": load_image(photos / "space" / "astronaut.png"), "mask": mask, "bboxes": [[10, 10, 50, 60]],
              "labels": [3]}
    for row in _manifest(out):
        expected = pipe(sample, index=0, epoch=row["copy"])
        np.testing.assert_allclose(row["fields"]["bboxes"], expected["bboxes"], rtol=1e-6)
        image_file, mask_file = row["files"]
        assert mask_file == image_file.replace(".png", ".mask.png")
        np.testing.assert_array_equal(np.asarray(Image.open(out / mask_file)), expected["mask"])


def test_webdataset_shards_are_an_input(photos, tmp_path):
    wds = pytest.importorskip("webdataset")
    shard = tmp_path / "in-000.tar"
    with wds.TarWriter(str(shard)) as sink:
        for i, name in enumerate(["cat/cat.png", "space/rocket.jpg"]):
            sink.write({"__key__": f"s{i}", "png": (photos / name).read_bytes(), "cls": str(i).encode()})
    run_cli("materialize", SMALL, "-i", shard, "-o", tmp_path / "o", "--manifest", "jsonl", check=True)
    rows = _manifest(tmp_path / "o")
    assert [(r["source"], r["label"], r["status"]) for r in rows] == [("in-000.tar/s0", 0, "ok"),
                                                                      ("in-000.tar/s1", 1, "ok")]


def test_bad_inputs_are_skipped_counted_and_listed(bad_photos, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("materialize", SMALL, "-i", bad_photos, "-o", out, "--on-error", "skip", "--max-pixels",
                   "1000000", "--manifest", "jsonl", check=True)
    bad = {"cat/truncated.jpg", "space/empty.png", "things/huge.png", "things/notes.png"}
    assert "wrote 6 of 10 outputs" in proc.stdout and "skipped 4 outputs of 4 bad inputs" in proc.stdout
    for name in bad:
        assert f"  {name}: ImageDecodeError" in proc.stdout
    errors = {r["source"]: r["error"] for r in _manifest(out) if r["status"] == "error"}
    assert set(errors) == bad
    assert "empty" in errors["space/empty.png"] and "1,000,000" in errors["things/huge.png"]
    assert len(list((out / "data").rglob("*.png"))) == 6


def test_a_bad_input_stops_the_job_naming_the_file(bad_photos, tmp_path):
    proc = run_cli("materialize", SMALL, "-i", bad_photos, "-o", tmp_path / "out", "--shard-size", "2")
    assert proc.returncode == 1
    assert "input 'cat/truncated.jpg'" in proc.stderr and "--on-error skip" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_changed_seed_refuses_to_resume_unless_overwrite(photos, tmp_path):
    out = tmp_path / "out"
    run_cli("materialize", SMALL, "-i", photos, "-o", out, check=True)
    before = files_of(out)
    proc = run_cli("materialize", SMALL, "-i", photos, "-o", out, "--seed", "99")
    assert proc.returncode == 1 and "different seed (7, now 99)" in proc.stderr and "--overwrite" in proc.stderr
    assert files_of(out) == before
    run_cli("materialize", SMALL, "-i", photos, "-o", out, "--seed", "99", "--overwrite", check=True)
    assert files_of(out)["manifest.parquet"] != before["manifest.parquet"]


def test_labels_and_keys_cannot_write_outside_the_output(photos, tmp_path):
    manifest = tmp_path / "evil.jsonl"
    manifest.write_text("".join(json.dumps({"image": str(photos / "cat" / "cat.png"), "label": lab}) + "\n"
                                for lab in ["../../escaped", "/etc/passwd", ".."]))
    out = tmp_path / "deep" / "out"
    run_cli("materialize", SMALL, "-i", manifest, "-o", out, "--manifest", "jsonl", check=True)
    written = [p for p in tmp_path.rglob("*.png")]
    assert written and all(out in p.parents for p in written)
    for row in _manifest(out):
        assert (out / row["files"][0]).resolve().is_relative_to(out.resolve())
        assert ".." not in row["files"][0].split("/")
