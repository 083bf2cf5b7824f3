"""A diffusion op in `offline:`: materialize runs it with class-name prompts and caches beside the output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="the generative ops need the diffusers extra")

from augflow import Pipeline  # noqa: E402
from augflow.generative import cache, models, use_cache_dir  # noqa: E402
from augflow.io import engines  # noqa: E402
from augflow.io import materialize as mat  # noqa: E402
from augflow.io.sources import load_item  # noqa: E402


def test_offline_diffusion_is_prompted_by_folder_name_cached_in_output_and_replayed(
        tmp_path, tiny_sd, cat64, monkeypatch):
    monkeypatch.delenv(cache.ENV_VAR, raising=False)
    for name, img in (("cat", cat64), ("dog", np.ascontiguousarray(cat64[:, ::-1]))):
        (tmp_path / "in" / name).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "in" / name / "0.png")
    spec = {"augflow": 1, "seed": 2, "sample": [{"horizontal_flip": {"p": 0.5}}],
            "offline": [{"augmented_conditioning": {"model": str(tiny_sd), "prompt": "a photo of a {label_name}",
                                                    "strength": 0.5, "steps": 2}}]}
    (tmp_path / "p.yaml").write_text(json.dumps(spec))
    job = mat.plan(mat.JobOptions(pipeline=str(tmp_path / "p.yaml"), input=str(tmp_path / "in"),
                                  output=str(tmp_path / "out"), manifest="jsonl"))
    engines.run(job)
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [r["provenance"][-1]["params"]["prompt"] for r in rows] == ["a photo of a cat", "a photo of a dog"]
    assert list((tmp_path / "out" / ".augflow" / "cache").rglob("*.npy"))

    pipe = Pipeline.from_dict(spec)
    calls = models.CALLS["augmented_conditioning"]
    cache.clear_memory()                              # only the output's disk cache may answer
    for row, item in zip(rows, job.source.items):
        loaded = load_item(item, {})
        stage = pipe(loaded, index=row["source_index"], epoch=row["copy"])
        assert [e.to_dict() for e in stage.provenance] == row["provenance"][:-1]
        with use_cache_dir(job.cache_dir):
            replayed = pipe.replay(loaded, row["provenance"])["image"]
        written = np.asarray(Image.open(tmp_path / "out" / row["files"][0]))
        np.testing.assert_array_equal(written, replayed)
        assert np.abs(written.astype(int) - stage["image"]).mean() > 1     # the generation changed it
    assert models.CALLS["augmented_conditioning"] == calls
