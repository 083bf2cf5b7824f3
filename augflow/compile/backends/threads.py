"""The compiled loader with its sample stage on threads instead of worker processes.

JPEG decode (simplejpeg), OpenCV kernels (albumentations' crops, resizes, colour ops) and torch
release the GIL while they compute, so threads share the cores without worker processes: no
worker start-up (a spawned worker imports torch + albumentations, ~3 s of CPU here), no pickling
of samples between processes, and the batch is collated where it is consumed. Python-level work
(parameter drawing, provenance) still takes the GIL, so threads pay off when the kernels dominate
(large images, decode-heavy loaders) and processes when per-sample Python work does.

Outputs are the same as with processes: each sample still draws from (seed, epoch, index), and
ops keep their per-thread state (tests/compile/test_thread_loader.py).
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

from augflow.compile.backends.torch_loader import CompiledLoader


def _thread_init() -> None:
    import cv2
    cv2.setNumThreads(1)   # one OpenCV thread per loader thread: the loader threads are the parallelism


class ThreadLoader(CompiledLoader):
    """`CompiledLoader` whose sample stage runs on `num_workers` threads (at least one), keeping
    `prefetch_factor` batches in flight."""

    def __init__(self, plan: Any, records: Any):
        self.threads = max(1, int(plan.options.num_workers))
        self.prefetch = int(plan.options.prefetch_factor or 2)
        # the DataLoader underneath runs in-process; this class only replaces how items are made
        super().__init__(plan.replace(options=_in_process(plan.options)), records)
        self.plan = plan
        self._pool: ThreadPoolExecutor | None = None

    def _key_batches(self) -> Iterator[list]:
        if self.user_batch_sampler is not None:
            yield from self.dataloader.batch_sampler
            return
        keys = list(self.sampler)
        bs = self.plan.options.batch_size
        for start in range(0, len(keys), bs):
            batch = keys[start:start + bs]
            if len(batch) < bs and self.plan.options.drop_last:
                return
            yield batch

    def _collated(self) -> Iterator[dict[str, Any]]:
        """Collated batches made on the thread pool; `CompiledLoader` does epochs, errors and the
        batch stage around them, as for worker processes."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="augflow-loader", initializer=_thread_init)
        pending: collections.deque = collections.deque()
        batches = self._key_batches()
        get = self.dataset.__getitem__

        def submit() -> bool:
            keys = next(batches, None)
            if keys is None:
                return False
            pending.append([self._pool.submit(get, key) for key in keys])
            return True

        for _ in range(max(1, self.prefetch)):
            if not submit():
                break
        while pending:
            futures = pending.popleft()
            submit()
            yield self._collate([f.result() for f in futures])

    def __len__(self) -> int:
        return len(self.dataloader)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _in_process(options: Any) -> Any:
    import dataclasses
    return dataclasses.replace(options, num_workers=0, persistent_workers=None, prefetch_factor=None)
