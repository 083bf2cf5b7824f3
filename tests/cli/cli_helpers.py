"""Helpers of the CLI tests: run `python -m augflow ...` as a subprocess, make small photographs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image
from skimage import data

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PIPELINES = HERE / "pipelines"

# (class folder, file name, photograph, resize to): small, so every command stays fast
PHOTOS = [
    ("cat", "chelsea.jpg", data.chelsea, (96, 64)),
    ("cat", "cat.png", data.cat, (90, 60)),
    ("space", "astronaut.png", data.astronaut, (80, 80)),
    ("space", "rocket.jpg", data.rocket, (96, 64)),
    ("things", "coffee.png", data.coffee, (96, 64)),
    ("things", "camera.png", data.camera, (72, 72)),    # grayscale
]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(NO_ALBUMENTATIONS_UPDATE="1", AUGFLOW_PROGRESS_INTERVAL="0.5", **extra)
    return env


def run_cli(*args: str | os.PathLike, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI; stdout/stderr captured as text (not a TTY: plain progress lines)."""
    proc = subprocess.run([sys.executable, "-m", "augflow", *map(str, args)], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"augflow {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def write_photos(root: Path) -> Path:
    for folder, name, load, size in PHOTOS:
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(load()).resize(size, Image.BILINEAR).save(root / folder / name)
    return root


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under root (relative posix path -> bytes), for byte-identical comparisons."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
