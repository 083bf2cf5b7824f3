"""The examples run as written (as a user runs them) and print what the README promises."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_example_replays_and_is_worker_count_independent():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "replay is bit-identical: True" in result.stdout
    assert "same batch with 0 and 2 workers: True" in result.stdout
