"""Two gloo ranks on CPU: each shards by its rank, and every sample equals the single-process one."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import augflow

PIPE = {"augflow": 1, "name": "ddp", "seed": 11, "sample": [
    {"random_resized_crop": {"size": [24, 24]}}, {"horizontal_flip": {}}, {"to_tensor": {}}]}


def _rank_main(rank: int, world: int, paths: list[str], port: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        loader = augflow.Pipeline.from_dict(PIPE).compile(paths, batch_size=2, shuffle=True)
        loader.set_epoch(3)
        got = {int(i): img for b in loader for i, img in zip(b["_index"], b["image"])}
        torch.save({"rank": loader.rank, "world": loader.world_size, "samples": got}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_two_gloo_ranks_shard_and_match_single_process(jpeg_paths, tmp_path):
    paths = jpeg_paths[:6]
    # spawn, not fork: other tests in this process may have started threads (DALI, torch) that a
    # forked child would inherit mid-lock
    mp.start_processes(_rank_main, args=(2, paths, _free_port(), str(tmp_path / "out")), nprocs=2,
                       start_method="spawn")
    results = [torch.load(tmp_path / f"out.{r}") for r in (0, 1)]
    assert [(r["rank"], r["world"]) for r in results] == [(0, 2), (1, 2)]
    assert not set(results[0]["samples"]) & set(results[1]["samples"])
    single = augflow.Pipeline.from_dict(PIPE).compile(paths, batch_size=2, shuffle=True)
    single.set_epoch(3)
    ref = {int(i): img for b in single for i, img in zip(b["_index"], b["image"])}
    for r in results:
        for i, img in r["samples"].items():
            assert torch.equal(img, ref[i])
    assert set(results[0]["samples"]) | set(results[1]["samples"]) == set(ref)
