"""Reading a loader-ready folder (`augflow materialize --format loader`, written by
`augflow.io.loader_format`): its records are slices of memory-mapped shards, no per-file open.

Apart from the writer so that `augflow.io.readers` can read such a folder without importing the
writer, which itself reads its sources through `readers`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from augflow.errors import AugflowError

META = "loader.json"
FORMAT = "augflow-loader"
ENCODINGS = ("jpeg", "raw")


class LoaderFormatError(AugflowError, ValueError):
    """A conversion that cannot go on (settings differ from the existing output, bad options)."""


def shard_paths(root: Path, s: int) -> tuple[Path, Path]:
    return root / f"shard-{s:05d}.bin", root / f"shard-{s:05d}.idx.npy"


def is_loader_dataset(path: str | os.PathLike) -> bool:
    p = Path(path) / META
    if not p.is_file():
        return False
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError):
        return False


class LoaderShards(Sequence):
    """The records of a loader-ready folder: {"image": JPEG bytes view or uint8 HxWxC array, "label"}.

    Shards are memory-mapped on first use in each process (the object pickles as its folder), so
    reading an image is a slice of a mapping, not a file open."""

    def __init__(self, root: str | os.PathLike, image_key: str = "image", label_key: str = "label"):
        self.root = Path(root)
        self.meta = json.loads((self.root / META).read_text(encoding="utf-8"))
        self.image_key, self.label_key = image_key, label_key
        self.shard_size = int(self.meta["shard_size"])
        self.raw = self.meta["encoding"] == "raw"
        n_shards = -(-int(self.meta["count"]) // self.shard_size)
        missing = [s for s in range(n_shards) if not shard_paths(self.root, s)[1].exists()]
        if missing:
            raise LoaderFormatError(f"{self.root}: shards {missing[:5]} are not finished; rerun the conversion "
                                    "(it resumes) before reading")
        self.index = [np.load(shard_paths(self.root, s)[1]) for s in range(n_shards)]
        self._maps: dict[int, np.memmap] = {}

    def __len__(self) -> int:
        return int(self.meta["count"])

    def _map(self, s: int) -> np.ndarray:
        m = self._maps.get(s)
        if m is None:
            path = shard_paths(self.root, s)[0]
            m = self._maps[s] = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
        return m

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images in {self.root}")
        s, k = divmod(int(i), self.shard_size)
        off, length, h, w, c, label = (int(v) for v in self.index[s][k])
        data = self._map(s)[off:off + length]
        image = data.reshape(h, w, c) if self.raw else memoryview(data)
        out = {self.image_key: image}
        if label >= 0:
            out[self.label_key] = label
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state
