"""`kill -9` of `augflow materialize` at any moment, then a rerun: the same files as one clean run.

A test-only op (`slow_ops.test_sleep`, imported by the pipeline's `imports:`) stretches each
sample so the test can kill the process at chosen moments: right after the job is planned, in
the middle of a shard (a temp file or unrecorded outputs on disk), and with one shard left.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from augflow.io.writers import TMP_MARK
from cli_helpers import PIPELINES, REPO, cli_env, files_of, run_cli

COPIES, SHARD = 4, 5          # 6 photos x 4 copies = 24 outputs in 5 shards


def _args(photos, out, fmt, workers):
    return ["materialize", PIPELINES / "slow.yaml", "-i", photos, "-o", out, "-k", COPIES, "-f", fmt,
            "--shard-size", SHARD, "-w", workers, "--manifest", "jsonl"]


def _parts(out) -> list:
    return sorted((out / ".augflow" / "parts").glob("part-*.jsonl")) if (out / ".augflow" / "parts").exists() else []


def _recorded_outputs(out) -> int:
    return sum(json.loads(line)["status"] == "ok" for p in _parts(out) for line in p.read_text().splitlines())


def _in_flight(out) -> bool:
    """Outputs of a shard that is not recorded yet are on disk (a temp tar, or written images)."""
    if any(TMP_MARK in p.name for p in out.rglob("*")):
        return True
    data = out / "data"
    return data.exists() and sum(1 for p in data.rglob("*.png")) > _recorded_outputs(out)


MOMENTS = {
    "early": lambda out: (out / ".augflow" / "job.json").exists(),
    "mid-shard": lambda out: len(_parts(out)) >= 1 and _in_flight(out),
    # the last two shards unrecorded: with 2 workers they run in lockstep (equal sleeps) and are
    # recorded within milliseconds of each other, so "exactly one left" could be skipped over
    "near the end": lambda out: len(_parts(out)) >= -(-6 * COPIES // SHARD) - 2,
}


def _run_and_kill(args, out, moment: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "augflow", *map(str, args)], cwd=REPO, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while not MOMENTS[moment](out):
            assert proc.poll() is None, f"materialize finished before the '{moment}' moment"
            assert time.monotonic() < deadline, f"never reached the '{moment}' moment"
            time.sleep(0.005)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10                 # worker processes die with the CLI: no orphan writes
    while any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "worker processes outlived the killed CLI"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            out += [int(c) for c in fh.read().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("fmt,workers", [("webdataset", 1), ("folder", 2)])
def test_kill_9_at_any_moment_then_rerun_gives_the_uninterrupted_result(photos, tmp_path, fmt, workers):
    reference, out = tmp_path / "reference", tmp_path / "killed"
    run_cli(*_args(photos, reference, fmt, 1), check=True)
    for moment in MOMENTS:
        _run_and_kill(_args(photos, out, fmt, workers), out, moment)
        if moment == "mid-shard":
            assert _in_flight(out)               # a partial shard really was left behind
    proc = run_cli(*_args(photos, out, fmt, workers), check=True)
    # killed with two shards (or, by the time the kill lands, one or none) left unrecorded
    assert re.search(r"resuming: [345] of 5 shards already done", proc.stderr)
    got, want = files_of(out), files_of(reference)
    assert sorted(got) == sorted(want)
    assert got == want
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["source_index"], r["copy"]) for r in rows] == [(i, c) for i in range(6) for c in range(COPIES)]
