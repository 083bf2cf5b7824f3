"""Fixtures for compiler tests: real photographs (skimage.data) written as small JPEG files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def write_jpeg(path, img: np.ndarray, quality: int = 90) -> str:
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return str(path)


def photo(name: str, size: tuple[int, int]) -> np.ndarray:
    """skimage photograph `name` resized to (width, height)."""
    return cv2.resize(getattr(data, name)(), size, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def jpeg_folder(tmp_path_factory) -> str:
    """An image folder: 3 class sub-folders, 12 JPEGs of 120x90 / 90x120 photographs."""
    root = tmp_path_factory.mktemp("jpeg_folder")
    for i in range(12):
        cls = root / f"class_{i % 3}"
        cls.mkdir(exist_ok=True)
        size = (120, 90) if i % 2 == 0 else (90, 120)
        write_jpeg(cls / f"{i:02d}.jpg", photo(PHOTOS[i % len(PHOTOS)], size))
    return str(root)


@pytest.fixture(scope="session")
def jpeg_paths(jpeg_folder) -> list[str]:
    from pathlib import Path
    return sorted(str(p) for p in Path(jpeg_folder).rglob("*.jpg"))


@pytest.fixture(scope="session")
def large_jpegs(tmp_path_factory) -> list[str]:
    """Two 1600x1200 JPEGs (reduced decode has something to reduce)."""
    root = tmp_path_factory.mktemp("large_jpegs")
    return [write_jpeg(root / f"{n}.jpg", photo(n, (1600, 1200))) for n in ("astronaut", "coffee")]
