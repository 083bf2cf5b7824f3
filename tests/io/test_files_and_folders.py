"""Outputs and inputs on disk: distinct labels give distinct folders, --overwrite deletes only what
augflow wrote, manifest paths can be held inside a root, an unwritable output is one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

import augflow
from augflow.io import engines
from augflow.io import materialize as mat
from augflow.io.readers import ReaderError, read_manifest
from augflow.io.sources import SourceError, open_source

PIPELINE = {"augflow": 1, "seed": 5, "sample": [{"random_resized_crop": {"size": [24, 24]}},
                                                 {"horizontal_flip": {"p": 0.5}}]}
LABELS = [".", "..", "_", "", "a/b", "a_b", "a%2Fb", " x", "x ", "cat", "été", "...", "x" * 150, "x" * 149 + "y"]


def test_distinct_labels_give_distinct_reversible_folder_names():
    from augflow.io.writers import label_folder
    names = [label_folder(lab) for lab in LABELS]
    assert len(set(names)) == len(LABELS)
    for lab, name in zip(LABELS, names):
        assert "/" not in name and name not in (".", "..") and not name.startswith(".") and name == name.strip()
        assert len(name.encode()) <= 100
        if lab and len(lab) < 100:
            assert unquote(name) == lab
    assert [label_folder(x) for x in ("cat", "traffic light", "t-shirt")] == ["cat", "traffic light", "t-shirt"]


@pytest.fixture
def inputs(tmp_path, astronaut, chelsea) -> dict:
    (tmp_path / "img").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "img" / "a.png")
    Image.fromarray(chelsea).save(tmp_path / "img" / "b.png")
    (tmp_path / "p.yaml").write_text(json.dumps(PIPELINE))
    return {"pipeline": str(tmp_path / "p.yaml"), "dir": tmp_path}


def _run(inputs, manifest: Path, out: Path, **kw) -> mat.Summary:
    job = mat.plan(mat.JobOptions(pipeline=inputs["pipeline"], input=str(manifest), output=str(out),
                                  manifest="jsonl", **{k: v for k, v in kw.items() if k != "overwrite"}),
                   overwrite=kw.get("overwrite", False))
    return engines.run(job)


def test_dot_labels_are_not_merged_in_folder_output(inputs, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"image": f"img/{f}", "label": lab}) + "\n"
                                for f, lab in [("a.png", "."), ("b.png", ".."), ("a.png", "a/b"), ("b.png", "a_b")]))
    out = tmp_path / "out"
    _run(inputs, manifest, out)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    folders = [Path(r["files"][0]).parent.name for r in rows]
    assert len(set(folders)) == 4
    assert [unquote(f) for f in folders] == [r["label_name"] for r in rows] == [".", "..", "a/b", "a_b"]
    assert all((out / r["files"][0]).resolve().parent.parent == (out / "data").resolve() for r in rows)


def test_overwrite_deletes_only_what_augflow_wrote(inputs, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"image": f"img/{f}", "label": lab}) + "\n"
                                for f, lab in [("a.png", "cat"), ("b.png", "dog")]))
    out = tmp_path / "out"
    _run(inputs, manifest, out, copies=2, shard_size=1)
    (out / "data" / "README.txt").write_text("my notes")              # user files under data/
    (out / "data" / "cat" / "my_cat.png").write_bytes(b"mine")
    (out / "data" / "mine").mkdir()
    (out / "data" / "mine" / "x.txt").write_text("mine too")
    # a killed run: a shard's files written but never recorded
    killed = mat.plan(mat.JobOptions(pipeline=inputs["pipeline"], input=str(manifest), output=str(out),
                                     manifest="jsonl", copies=2, shard_size=1, seed=99), overwrite=True)
    mat.run_shard(killed.context("raise"), 3, killed.shard_items(3))
    (out / ".augflow" / "parts" / "part-00003.jsonl").unlink()
    killed.release()
    summary = _run(inputs, manifest, out, copies=2, shard_size=1, seed=123, overwrite=True)
    assert summary.written == 4
    assert (out / "data" / "README.txt").read_text() == "my notes"
    assert (out / "data" / "cat" / "my_cat.png").read_bytes() == b"mine"
    assert (out / "data" / "mine" / "x.txt").read_text() == "mine too"
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    ours = {r["files"][0] for r in rows}
    on_disk = {p.relative_to(out).as_posix() for p in (out / "data").rglob("*.png")}
    assert on_disk == ours | {"data/cat/my_cat.png"}


@pytest.fixture
def hostile_manifest(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "data" / "ok.png")
    (tmp_path / "data" / "m.jsonl").write_text(json.dumps({"image": "ok.png"}) + "\n"
                                               + json.dumps({"image": "../../../../../../etc/passwd"}) + "\n")
    return tmp_path / "data" / "m.jsonl"


def test_root_refuses_manifest_paths_outside_it(hostile_manifest, tmp_path):
    root = hostile_manifest.parent
    with pytest.raises(SourceError, match=r"m\.jsonl:2: path .*etc/passwd.* outside the allowed root"):
        open_source(hostile_manifest, root=root)
    with pytest.raises(ReaderError, match=r"m\.jsonl:2: image path .*etc/passwd.* outside the allowed root"):
        read_manifest(hostile_manifest, root=root)
    with pytest.raises(ReaderError, match="outside the allowed root"):
        augflow.Pipeline.from_dict(PIPELINE).compile(hostile_manifest, root=str(root))
    absolute = tmp_path / "abs.jsonl"
    absolute.write_text(json.dumps({"image": "/etc/hostname"}) + "\n")
    with pytest.raises(SourceError, match="outside the allowed root"):
        open_source(absolute, root=tmp_path)
    (root / "link.png").symlink_to("/etc/hostname")                     # a symlink out is refused too
    (root / "l.jsonl").write_text(json.dumps({"image": "link.png"}) + "\n")
    with pytest.raises(SourceError, match="outside the allowed root"):
        open_source(root / "l.jsonl", root=root)
    # inside the root, and by default (None: the manifest is trusted), paths are read
    (root / "ok.jsonl").write_text(json.dumps({"image": "ok.png"}) + "\n")
    assert len(open_source(root / "ok.jsonl", root=root).items) == 1
    assert len(open_source(hostile_manifest).items) == 2


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "augflow", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_root_and_unwritable_output_are_one_line_errors(inputs, hostile_manifest, tmp_path):
    proc = _cli("materialize", inputs["pipeline"], "-i", hostile_manifest, "-o", tmp_path / "o",
                "--root", hostile_manifest.parent)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "m.jsonl:2" in proc.stderr and "outside the allowed root" in proc.stderr
    for output in ("/proc/augflow-out", "/dev/null/out"):
        proc = _cli("materialize", inputs["pipeline"], "-i", inputs["dir"] / "img", "-o", output)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"error: cannot write the output '{output}'"), proc.stderr
