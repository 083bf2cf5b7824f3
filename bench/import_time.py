"""How long `import augflow`, `augflow --help` and `augflow validate` take, in fresh processes.

    python bench/import_time.py --rounds 5

Each command runs `--rounds` times in a new interpreter; the median wall time is reported, with
`python -c pass` (the interpreter's own start) and `import albumentations` (what validating a
pipeline of albumentations ops cannot avoid: its schemas are the ops' schemas) as the peers.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import augflow": [sys.executable, "-c", "import augflow"],
    "augflow --help": [sys.executable, "-m", "augflow", "--help"],
    "import albumentations": [sys.executable, "-c", "import albumentations"],
    "augflow validate pipelines/imagenet_train.yaml": [sys.executable, "-m", "augflow", "validate",
                                                       str(ROOT / "pipelines" / "imagenet_train.yaml")],
}


def median_seconds(cmd: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={"NO_ALBUMENTATIONS_UPDATE": "1",
                                                                   "PYTHONPATH": str(ROOT), "PATH": ""})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    for name, cmd in COMMANDS.items():
        print(f"{name:50s} {median_seconds(cmd, args.rounds):6.3f} s (median of {args.rounds})")


if __name__ == "__main__":
    main()
