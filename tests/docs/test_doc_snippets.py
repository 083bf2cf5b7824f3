"""Every YAML block in README.md and docs/*.md is validated and run, so the docs cannot drift.

A block is a whole file or a fragment (`sample:` only, or list items): fragments get `augflow: 1`
(and `sample:`) put in front. An HTML comment on the line before the fence marks the exceptions:
`<!-- snippet: expect-error TEXT -->` blocks must be refused with TEXT in the message, and
`<!-- snippet: needs-files -->` blocks name local models or data, so their only allowed errors are
the missing paths (everything else in them is still checked).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

import augflow
from augflow import PipelineConfigError
from augflow.cli.validate import file_kind
from augflow.config.build import build_spec
from augflow.config.loader import load_yaml_file, load_yaml_text

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:^<!-- snippet: (?P<mark>[\w-]+)(?P<text>[^>]*?)\s*-->\n)?^```yaml\n(?P<body>.*?)^```", re.S | re.M)
MISSING_PATH = ("does not exist", "no HistAug model in")


def snippets():
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line = text[:m.start("body")].count("\n")
            out.append(pytest.param(doc, line, m.group("mark"), (m.group("text") or "").strip(), m.group("body"),
                                    id=f"{doc.name}:{line}"))
    return out


SNIPPETS = snippets()


def as_file(body: str) -> tuple[str, int]:
    """The block as a whole file, and how many lines were put in front."""
    if re.search(r"^augflow:", body, re.M):
        return body, 0
    head = "augflow: 1\nsample:\n" if body.startswith("  -") else "augflow: 1\n"
    return head + body, head.count("\n")


def photo_sample(spec) -> dict:
    img = np.ascontiguousarray(data.astronaut()[::4, ::4])    # 128x128
    sample = {"image": img, "label": 1}
    for name, f in spec.fields.items():
        if f.kind == "image":
            sample[name] = img
        elif f.kind == "mask":
            sample[name] = (img.mean(axis=2) > 100).astype(np.uint8)
        elif f.kind == "bboxes":
            sample[name] = np.array([[30, 10, 80, 75], [5, 85, 50, 125]], np.float32)
            for lf in f.label_fields:
                sample[lf] = [1, 2]
        elif f.kind == "text":
            sample[name] = "two dogs playing on the grass"
    return sample


def run_pipeline(text: str, name: str) -> None:
    pipe = augflow.Pipeline.from_yaml_text(text, name)
    sample = photo_sample(pipe.spec)
    if pipe.spec.batch_steps:
        samples = [sample, {**sample, "image": np.ascontiguousarray(sample["image"][::-1]), "label": 2}]
        loader = pipe.compile(samples, batch_size=2, num_workers=0, device="cpu", num_classes=3)
        batch = next(iter(loader))
        assert batch["image"].shape[0] == 2 and torch.isfinite(batch["image"].float()).all()
        return
    out = pipe(sample, index=0)
    assert out.provenance or not pipe.op_steps(), "no op applied at all"
    views = [v for v in out.values() if isinstance(v, dict)]
    for view in views or [out]:
        image = view["image"]
        arr = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        assert arr.size and np.isfinite(arr.astype(np.float64)).all()


def run_tta(text: str, tmp_path: Path) -> None:
    path = tmp_path / "tta.yaml"
    path.write_text(text)
    model = torch.nn.Conv2d(3, 2, 1)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        merged = augflow.TTA(model, str(path))(images)
    assert merged.shape == (2, 2, 32, 32) and torch.isfinite(merged).all()


def check(text: str, name: str) -> None:
    data_ = load_yaml_text(text, name)
    if file_kind(data_) == "tta":
        from augflow.tta.config import build_tta
        build_tta(data_, name)
    else:
        build_spec(data_, name)


def test_every_doc_has_been_searched():
    assert len(SNIPPETS) >= 12
    assert any(p.values[0].name == "README.md" for p in SNIPPETS)


@pytest.mark.parametrize(("doc", "line", "mark", "expect", "body"), SNIPPETS)
def test_yaml_block_validates_and_runs(doc, line, mark, expect, body, tmp_path):
    text, shift = as_file(body)
    name = f"{doc.name}:{line}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mark == "expect-error":
            with pytest.raises(PipelineConfigError) as info:
                check(text, name)
            assert expect in str(info.value)
            return
        if mark == "needs-files":
            with pytest.raises(PipelineConfigError) as info:
                check(text, name)
            others = [i for i in info.value.issues if not any(s in i.message for s in MISSING_PATH)]
            assert not others, f"{doc.name} block at line {line + 1}: " + "; ".join(
                f"line {line + i.line - shift}: {i.message}" for i in others)
            return
        assert mark is None, f"unknown snippet mark {mark!r}"
        try:
            check(text, name)
        except PipelineConfigError as exc:
            raise AssertionError(f"{doc.name} block at line {line + 1} is refused:\n" + "\n".join(
                f"  line {line + i.line - shift if i.line else '?'}: {i.message}" for i in exc.issues)) from None
        if file_kind(load_yaml_text(text, name)) == "tta":
            run_tta(text, tmp_path)
        else:
            run_pipeline(text, name)


def test_readme_block_is_the_shipped_file():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = next(m.group("body") for m in FENCE.finditer(readme) if "name: imagenet_train" in m.group("body"))
    assert load_yaml_text(block) == load_yaml_file(REPO / "pipelines" / "imagenet_train.yaml")


def test_format_doc_is_not_a_draft():
    head = (REPO / "docs" / "FORMAT.md").read_text(encoding="utf-8").splitlines()[0].lower()
    assert "draft" not in head
