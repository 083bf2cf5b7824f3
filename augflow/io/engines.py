"""Where materialization shards run: this process, local worker processes, or Ray Data.

Every engine calls the same `run_shard` on the same shards, so outputs never depend on the
engine or the worker count; engines differ only in how shards are spread and how progress comes
back. Worker processes die with their parent (a `kill -9` of the CLI leaves no writer behind).
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import functools
import logging
import multiprocessing as mp
import os
import pickle
import queue as queue_mod
import re
import signal
import time
import warnings
from typing import Any, Callable

from augflow.io.materialize import Job, MaterializeError, Summary, finalize, run_shard

_CTX: dict[str, Any] = {}
_QUEUE: Any = None


def run(job: Job, *, engine: str = "local", workers: int = 1, on_error: str = "raise",
        progress: Callable[[int], None] | None = None) -> Summary:
    """Do the job's shards that are not done on `engine`, then finalize. `progress(n)` is called
    as outputs finish."""
    runner = ENGINES.get(engine)
    if runner is None:
        raise MaterializeError(f"unknown engine {engine!r} (allowed: {', '.join(ENGINES)})")
    start = time.perf_counter()
    todo = [s for s in range(job.n_shards) if s not in job.done]
    runner(job, job.context(on_error), todo, workers, progress)
    try:
        return finalize(job, time.perf_counter() - start)
    finally:
        job.release()


def run_local(job: Job, ctx: dict, todo: list[int], workers: int,
              progress: Callable[[int], None] | None) -> None:
    """Shards in this process (`workers <= 1`) or in a pool of spawned processes."""
    if workers <= 1 or len(todo) <= 1:
        for s in todo:
            run_shard(ctx, s, job.shard_items(s), progress)
        return
    mpc = mp.get_context("spawn")      # fork after torch/OpenCV threads exist is unsafe
    q = mpc.Queue()
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=mpc, initializer=_init_worker,
                                initargs=(ctx, q, os.getpid())) as pool:
        pending = {pool.submit(_pool_shard, s, job.shard_items(s)) for s in todo}
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                _drain(q, progress)
                for fut in done:
                    fut.result()        # re-raises a shard's error here
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
        _drain(q, progress)


def _drain(q, progress) -> None:
    while True:
        try:
            n = q.get_nowait()
        except queue_mod.Empty:
            return
        if progress is not None:
            progress(n)


def _init_worker(ctx: dict, q, parent: int) -> None:
    global _CTX, _QUEUE
    _CTX, _QUEUE = ctx, q
    _die_with_parent(parent)
    _one_thread()


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when its parent dies, so no orphan keeps writing."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:          # the parent died before prctl took effect
        os._exit(1)


def _one_thread() -> None:
    """One thread per worker: parallelism comes from processes; threads would oversubscribe."""
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass


def _pool_shard(shard: int, items) -> dict:
    return run_shard(_CTX, shard, items, _QUEUE.put)


# ---- Ray ------------------------------------------------------------------------------------
def _ray_shard(ctx: dict, row: dict) -> dict:
    """A Ray Data map task: one shard. Ray reuses worker processes, so each builds the pipeline once."""
    _one_thread()
    result = run_shard(ctx, int(row["shard"]), pickle.loads(row["items"]))
    return {"shard": result["shard"], "written": result["written"], "n": int(row["n"])}


def run_ray(job: Job, ctx: dict, todo: list[int], workers: int,
            progress: Callable[[int], None] | None) -> None:
    """The same shards as Ray Data map tasks: a local Ray instance unless `RAY_ADDRESS` names a
    cluster (whose nodes must all see the output folder, e.g. a shared file system)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MaterializeError("--engine ray needs Ray Data: pip install 'augflow[ray]'") from None
    if not todo:
        return
    started = False
    if not ray.is_initialized():
        kwargs = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": max(1, workers), "include_dashboard": False}
        ray.init(log_to_driver=False, logging_level="ERROR", **kwargs)
        started = True
    # Progress and errors are reported by augflow (a shard's error is re-raised below); Ray's own
    # log lines would interleave with them.
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="The maximum number of concurrent tasks", category=UserWarning)
    try:
        dctx = ray.data.DataContext.get_current()
        dctx.enable_progress_bars = False
        dctx.print_on_execution_start = False
        rows = [{"shard": s, "n": job.shard_len(s), "items": pickle.dumps(job.shard_items(s))} for s in todo]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map(functools.partial(_ray_shard, ctx), compute=ray.data.TaskPoolStrategy(size=max(1, workers)),
                    num_cpus=1)
        for row in ds.iter_rows():
            if progress is not None:
                progress(int(row["n"]))
    except Exception as exc:  # noqa: BLE001 - Ray wraps the shard's error; show the original message
        message = _shard_error(exc)
        if message is not None:
            raise MaterializeError(message) from None
        raise
    finally:
        if started:
            ray.shutdown()


def _shard_error(exc: BaseException) -> str | None:
    """The MaterializeError message inside Ray's wrappers (they carry it as text, with the remote
    traceback), or None when the failure is something else."""
    texts, seen, stack = [], set(), [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        texts.append(str(e))
        stack += [getattr(e, "cause", None), e.__cause__, e.__context__]
    for text in texts:
        match = re.search(r"MaterializeError: (.+)", text)
        if match:
            return match.group(1).strip()
    return None


ENGINES: dict[str, Callable[..., None]] = {"local": run_local, "ray": run_ray}
