"""The batch ledger: one SQLite file in the output folder that remembers every input.

Each input (keyed by its path relative to the input folder) has exactly one row:
its content hash (SHA-256), size and modification time, the fingerprint of the
options it was cut out with, its status (``done`` or ``failed``), the output it
produced, the cutout's confidence, and the error when it failed. A rerun skips
rows that are ``done`` with the same content and options (and whose output still
exists) and retries everything else.

Crash safety: outputs are written atomically *before* their row says ``done``, and
SQLite's write-ahead log survives a killed process, so after ``kill -9`` a row is
either done with its whole output on disk or not done and redone. Nothing in this
module writes images.

A read-only or full output folder is an :class:`~alphacut.errors.OutputError` whose
advice keeps the ledger (it holds the resume state); only a ledger that is not a
database any more is to be moved away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from .errors import OutputError
from .options import Options

__all__ = ["LEDGER_NAME", "Entry", "Ledger", "LedgerStatus", "fingerprint", "sha256_bytes"]

LedgerStatus = Literal["done", "failed"]

LEDGER_NAME = ".alphacut-ledger.sqlite"
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
    path TEXT PRIMARY KEY,        -- the input, relative to the input folder, '/' separated
    sha256 TEXT NOT NULL,         -- of the bytes that were cut out
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    options TEXT NOT NULL,        -- fingerprint(options, model)
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    output TEXT,                  -- relative to the output folder; NULL when failed
    confidence REAL,
    needs_review INTEGER,
    error TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 1,
    seconds REAL,
    updated REAL NOT NULL
);
"""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(options: Options, model_sha256: str) -> str:
    """A short, stable digest of everything that changes an output's bytes."""
    payload = json.dumps(
        {"options": options.identity(), "model": model_sha256}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Entry:
    """One input's row."""

    path: str
    sha256: str
    size: int
    mtime_ns: int
    options: str
    status: LedgerStatus
    output: str | None
    confidence: float | None
    needs_review: bool | None
    error: str | None
    warnings: list[str]
    attempts: int
    seconds: float | None
    updated: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Ledger:
    """The ledger of one output folder. Safe to share between threads (one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")  # a killed writer loses nothing committed
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            version = self._meta("schema_version")
            if version is None:
                self._set_meta("schema_version", str(_SCHEMA_VERSION))
            elif int(version) != _SCHEMA_VERSION:
                raise OutputError(
                    f"{self.path} was written by another alphacut version (ledger schema {version}):"
                    " move it away to start the batch afresh"
                )
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise _ledger_error(self.path, exc, "open") from None
        except OSError as exc:
            raise _ledger_error(self.path, exc, "open") from None
        self._lock = threading.Lock()

    @classmethod
    def in_folder(cls, out_dir: Path) -> Ledger:
        return cls(Path(out_dir) / LEDGER_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get(self, path: str) -> Entry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM inputs WHERE path = ?", (path,)).fetchone()
        return None if row is None else _entry(row)

    def entries(self) -> Iterator[Entry]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM inputs ORDER BY path").fetchall()
        return (_entry(r) for r in rows)

    def outputs(self) -> dict[str, str]:
        """Output (relative to OUT) -> the input that claims it."""
        with self._lock:
            rows = self._db.execute("SELECT output, path FROM inputs WHERE output IS NOT NULL").fetchall()
        return {str(o): str(p) for o, p in rows}

    def record(
        self,
        path: str,
        *,
        sha256: str,
        size: int,
        mtime_ns: int,
        options: str,
        status: LedgerStatus,
        output: str | None = None,
        confidence: float | None = None,
        needs_review: bool | None = None,
        error: str | None = None,
        warnings: list[str] | None = None,
        seconds: float | None = None,
    ) -> None:
        """Insert or replace the row of ``path`` (one row per input, ever)."""
        if status not in ("done", "failed"):
            raise ValueError(f"status must be 'done' or 'failed', got {status!r}")
        with self._lock, self._writing(), self._db:
            self._db.execute(
                """INSERT INTO inputs (path, sha256, size, mtime_ns, options, status, output, confidence,
                                       needs_review, error, warnings, attempts, seconds, updated)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
                   ON CONFLICT (path) DO UPDATE SET
                       sha256 = excluded.sha256, size = excluded.size, mtime_ns = excluded.mtime_ns,
                       options = excluded.options, status = excluded.status, output = excluded.output,
                       confidence = excluded.confidence, needs_review = excluded.needs_review,
                       error = excluded.error, warnings = excluded.warnings,
                       attempts = inputs.attempts + 1, seconds = excluded.seconds,
                       updated = excluded.updated""",
                (
                    path, sha256, size, mtime_ns, options, status, output, confidence,
                    None if needs_review is None else int(needs_review), error,
                    json.dumps(warnings or []), seconds, time.time(),
                ),
            )

    def touch(self, path: str, *, size: int, mtime_ns: int) -> None:
        """Remember a new size/mtime for an input whose content hash did not change."""
        with self._lock, self._writing(), self._db:
            self._db.execute("UPDATE inputs SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path))

    def _writing(self) -> AbstractContextManager[None]:
        return _translated(self.path)


@contextlib.contextmanager
def _translated(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise _ledger_error(path, exc, "write") from None


def _ledger_error(path: Path, exc: Exception, doing: str) -> OutputError:
    """The ledger cannot be opened or written: what to do, keeping the resume state where it is good."""
    text = str(exc).lower()
    folder = path.parent
    if "readonly" in text or "read-only" in text or "unable to open" in text or "permission" in text:
        return OutputError(
            f"cannot {doing} the ledger in {folder}: the folder (or {path.name}) is not writable; make it writable"
            " and run the same command again (the ledger keeps what is done), or choose another output folder"
        )
    if "full" in text or "no space" in text or "disk i/o" in text:
        return OutputError(
            f"cannot {doing} the ledger in {folder}: {exc}; free some space on that disk and run the same command"
            " again (the ledger keeps what is done)"
        )
    if "locked" in text or "busy" in text:
        return OutputError(
            f"the ledger in {folder} is busy ({exc}): another program holds it; wait for it and run again"
        )
    return OutputError(
        f"the ledger {path} is damaged ({exc}): move it away to start the batch afresh (the outputs stay; the"
        " next run cuts the inputs out again)"
    )


def _entry(row: tuple[Any, ...]) -> Entry:
    (path, sha, size, mtime_ns, options, status, output, confidence, review, error, warnings, attempts,
     seconds, updated) = row
    return Entry(
        path=path, sha256=sha, size=size, mtime_ns=mtime_ns, options=options, status=status, output=output,
        confidence=confidence, needs_review=None if review is None else bool(review), error=error,
        warnings=json.loads(warnings or "[]"), attempts=attempts, seconds=seconds, updated=updated,
    )
