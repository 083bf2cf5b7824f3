"""Fixtures of the CLI tests: folders of small skimage photographs, good and bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import write_photos


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """An ImageFolder-style folder: cat/, space/, things/ with six small skimage photographs."""
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def bad_photos(tmp_path_factory) -> Path:
    """The photographs plus bad inputs: truncated, zero-byte, not an image, absurd size."""
    root = write_photos(tmp_path_factory.mktemp("bad_photos"))
    jpg = (root / "cat" / "chelsea.jpg").read_bytes()
    (root / "cat" / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    (root / "space" / "empty.png").write_bytes(b"")
    (root / "things" / "notes.png").write_bytes(b"these are notes, not a picture\n")
    big = Image.fromarray(np.zeros((1, 1), np.uint8)).resize((4000, 3000))   # 12 Mpx, over --max-pixels 1e6
    big.save(root / "things" / "huge.png")
    return root
