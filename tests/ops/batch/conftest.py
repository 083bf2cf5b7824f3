"""Batch-op fixtures: a few JPEG files of skimage photographs."""

import cv2
import pytest
from skimage import data


@pytest.fixture(scope="session")
def jpeg_like_paths(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("batch_jpegs")
    paths = []
    for i, name in enumerate(("astronaut", "chelsea", "coffee", "rocket")):
        img = cv2.resize(getattr(data, name)(), (96, 72), interpolation=cv2.INTER_AREA)
        path = root / f"{i}_{name}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    return paths
