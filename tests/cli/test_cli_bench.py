"""`augflow bench`: images/s and a per-op time table."""

import json

from augflow import Pipeline
from cli_helpers import PIPELINES, run_cli


def test_bench_reports_throughput_and_every_op(photos):
    proc = run_cli("bench", PIPELINES / "small.yaml", "-i", photos, "-n", "4", "--repeat", "2", "--json", check=True)
    result = json.loads(proc.stdout)
    assert result["inputs"] == 4 and result["images_per_s"] > 0
    ops = {row["path"]: row for row in result["ops"]}
    pipe = Pipeline.from_yaml(PIPELINES / "small.yaml")
    assert {s.path for s in pipe.op_steps()} | {"-"} == set(ops)
    assert ops["sample[0]"]["calls"] == 8               # random_resized_crop always runs: 4 inputs x 2 passes
    assert 0 <= ops["sample[1]"]["calls"] <= 8           # horizontal_flip, p = 0.5
    assert all(row["ms_total"] >= 0 for row in result["ops"])


def test_bench_table_names_the_slowest_op(photos):
    proc = run_cli("bench", "pipelines/imagenet_train.yaml", "-i", photos, "-n", "3", "--repeat", "1", check=True)
    assert "images/s" in proc.stdout.splitlines()[0]
    assert "path\top\tcalls\tms total\tms/call\tshare" in proc.stdout
    assert "slowest op:" in proc.stdout
