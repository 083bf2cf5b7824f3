"""examples/tta_detection.py and examples/migrate_albumentations.py run as written and print what
docs/tta.md and docs/migrating.md promise."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(name):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_detection_tta_example_maps_every_view_back_exactly():
    out = _run("tta_detection.py")
    assert "16 views; every view's boxes, mapped back, equal the original detections: True" in out
    assert "with 4 views" in out


def test_migration_example_converts_replays_and_goes_back():
    out = _run("migrate_albumentations.py")
    assert "replay is bit-identical: True" in out
    assert "back to albumentations: ['LongestMaxSize', 'PadIfNeeded', 'Affine', 'HorizontalFlip', 'OneOf'" in out
    assert "caught: augflow.op.random_resized_crop(scale=(0.08, 1.5)):" in out
