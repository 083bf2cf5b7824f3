"""What every augflow trainer shares: checkpoints that survive a kill, a progress bar, seeding.

A checkpoint is a directory. `save_checkpoint` writes to a temporary file and renames it, so a
run killed mid-write leaves the previous checkpoint intact; `load_checkpoint` returns None when
there is nothing to resume from. Trainers keep their RNG state out of the global torch/numpy
generators (every draw comes from a generator seeded by (seed, epoch)), so model, optimizer,
epoch and history are all a resume needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from augflow.io.writers import atomic_write

CHECKPOINT_NAME = "last.pt"


def save_checkpoint(directory: str | Path, state: dict[str, Any], name: str = CHECKPOINT_NAME) -> Path:
    """Write `state` (tensors, state dicts, plain data) atomically to `directory/name`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load_checkpoint(directory: str | Path, name: str = CHECKPOINT_NAME, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any] | None:
    """The state saved by `save_checkpoint`, or None when the directory holds none."""
    path = Path(directory) / name
    if not path.exists():
        return None
    # weights_only=False: checkpoints hold plain Python data (history, config) beside tensors;
    # they are files this trainer wrote, not downloads.
    return torch.load(path, map_location=map_location, weights_only=False)


def write_json(path: str | Path, data: Any) -> None:
    """Atomic JSON write (same reason as `save_checkpoint`)."""
    atomic_write(Path(path), json.dumps(data, indent=2, sort_keys=False).encode("utf-8"))


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", enabled: bool = True,
             initial: int = 0):
    """A tqdm progress bar (a silent one when `enabled` is False, e.g. in tests and CI logs)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, initial=initial, dynamic_ncols=True,
                leave=True)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (model initialisation) under a fixed torch seed without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def generator(seed: int, *parts: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for one (seed, epoch, ...) tuple: shuffles are a pure function of it."""
    value = int(seed) & 0xFFFFFFFF
    for p in parts:
        value = (value * 1_000_003 + int(p) + 0x9E3779B9) & 0xFFFFFFFFFFFF
    g = torch.Generator(device=device)
    g.manual_seed(value)
    return g


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`auto` (or None) means CUDA when present, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


__all__ = ["save_checkpoint", "load_checkpoint", "write_json", "progress", "seeded", "generator",
           "resolve_device", "CHECKPOINT_NAME"]
