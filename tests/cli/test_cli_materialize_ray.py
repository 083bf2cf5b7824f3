"""`augflow materialize --engine ray` on a local Ray instance: the local engine's exact bytes."""

import pytest

from cli_helpers import PIPELINES, files_of, run_cli

pytest.importorskip("ray.data", reason="--engine ray needs the `ray` extra (ray[data])")


def test_ray_engine_output_is_identical_to_the_local_engine(photos, tmp_path):
    args = ["materialize", PIPELINES / "small.yaml", "-i", photos, "-k", "2", "-f", "hf", "--shard-size", "5"]
    run_cli(*args, "-o", tmp_path / "local", check=True)
    proc = run_cli(*args, "-o", tmp_path / "ray", "--engine", "ray", "--workers", "2", check=True, timeout=600)
    assert "wrote 12 of 12 outputs" in proc.stdout
    local, ray = files_of(tmp_path / "local"), files_of(tmp_path / "ray")
    assert len([f for f in local if f.endswith(".arrow")]) == 3
    assert sorted(local) == sorted(ray)
    assert local == ray
