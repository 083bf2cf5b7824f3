"""The materialize job API (what `augflow materialize` runs): output-folder safety and resumption."""

import json

import pytest
from PIL import Image

from augflow.io import engines
from augflow.io import materialize as mat

PIPELINE = {"augflow": 1, "seed": 5, "sample": [{"random_resized_crop": {"size": [32, 32]}},
                                                 {"horizontal_flip": {"p": 0.5}}]}


@pytest.fixture
def job_args(tmp_path, astronaut, chelsea):
    (tmp_path / "in").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "in" / "a.png")
    Image.fromarray(chelsea).save(tmp_path / "in" / "b.png")
    (tmp_path / "p.yaml").write_text(json.dumps(PIPELINE))      # JSON is YAML
    return dict(pipeline=str(tmp_path / "p.yaml"), input=str(tmp_path / "in"), copies=3, shard_size=2)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_foreign_non_empty_folder_is_never_written_or_cleared(tmp_path, job_args, overwrite):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(mat.MaterializeError, match="not empty and is not an augflow output"):
        mat.plan(mat.JobOptions(output=str(out), **job_args), overwrite=overwrite)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_two_runs_cannot_write_one_output_at_once(tmp_path, job_args):
    first = mat.plan(mat.JobOptions(output=str(tmp_path / "out"), **job_args))
    with pytest.raises(mat.MaterializeError, match="another `augflow materialize` is writing"):
        mat.plan(mat.JobOptions(output=str(tmp_path / "out"), **job_args))
    assert first.n_shards == 3


def test_a_rerun_does_only_the_shards_not_recorded(tmp_path, job_args):
    out = tmp_path / "out"
    job = mat.plan(mat.JobOptions(output=str(out), **job_args))
    ctx = job.context("raise")
    mat.run_shard(ctx, 1, job.shard_items(1))
    job.release()                                          # as the end of a killed process would
    again = mat.plan(mat.JobOptions(output=str(out), **job_args))
    assert again.done == {1}
    summary = engines.run(again)
    assert summary.written == 6 and summary.shards_already_done == 1
    rows = [json.loads(line) for line in (out / ".augflow" / "parts" / "part-00001.jsonl").read_text().splitlines()]
    assert [(r["source_index"], r["copy"]) for r in rows] == [(0, 2), (1, 0)]     # outputs 2, 3: i = j // 3
