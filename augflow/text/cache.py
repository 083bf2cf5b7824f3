"""Rewrites cached on disk (SQLite), so rerunning an evaluation costs no LLM calls.

The key is a hash of everything that decides a rewrite: backend kind, model, prompt, input,
seed, the rewrite's index and the sampling settings. Only successful rewrites are stored: a
fallback after a failure is retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class RewriteCache:
    """A key -> rewrite table in one SQLite file (safe to share between threads and processes)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """Opened on first use, so building a rewriter touches no file until it rewrites."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            with conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS rewrites (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
                             "meta TEXT, created REAL)")
            self._conn = conn
        return self._conn

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT text FROM rewrites WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def get_many(self, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                marks = ",".join("?" * len(chunk))
                out.update(self._db.execute(f"SELECT key, text FROM rewrites WHERE key IN ({marks})", chunk).fetchall())
        return out

    def put(self, key: str, text: str, meta: dict[str, Any] | None = None) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO rewrites VALUES (?, ?, ?, ?)",
                             (key, text, json.dumps(meta or {}, ensure_ascii=False), time.time()))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM rewrites").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


__all__ = ["RewriteCache", "cache_key"]
