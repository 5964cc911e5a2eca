"""Group commit: concurrent single writes applied in one transaction, made durable by one commit.

Every registry write is a `synchronous = FULL` commit, an fsync that SQLite serialises (one writer at
a time). A server answering many callers at once (`gdpr-sweep serve`) hands its writes to one writer
thread instead: the writer takes whatever writes are waiting (up to `MAX_BATCH`, without waiting for
more), applies each in its own savepoint of one transaction, commits once, and only then answers each
caller. Decision 0311.

- **Durable before answered.** A caller's `run` returns only after the COMMIT of the transaction that
  holds its write has returned, i.e. after the fsync of the write-ahead log (`synchronous = FULL`).
- **One bad write fails alone.** A write that raises (invalid input, not found, conflict) is rolled back
  to its savepoint and gets its own error; the other writes of the batch go on.
- **A failed batch answers no success.** When taking the lock, a database error or the COMMIT fails,
  the whole transaction is rolled back and every caller of the batch gets the error.
- **Order.** Writes are applied in the order they arrived; each gets its own recording time, and the
  history's sequence numbers follow that order. A write that starts after another's answer lands in a
  later batch, so it comes later in the history and sees the earlier one.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from pipelines.core.errors import SweepError
from pipelines.registry.model import utc_now
from pipelines.registry.store import RegistryStore, _Tx

T = TypeVar("T")
MAX_BATCH = 64
"""At most this many writes share one commit: bounds how long one batch holds SQLite's write lock
(the CLI and the sweep may be waiting for it) and how much one failed COMMIT takes down with it."""

Job = Callable[[_Tx], Any]
_Item = tuple[Job, "Future[Any]"]


def _fresh(exc: BaseException) -> BaseException:
    """A copy of a batch-wide error for one caller (one exception object must not be raised in several
    threads at once: each raise rewrites its traceback)."""
    if isinstance(exc, SweepError):
        try:
            return type(exc)(str(exc))
        except TypeError:  # a subclass with another constructor: keep the message
            return SweepError(str(exc))
    return SweepError("the blacklist database write failed; nothing of this request was stored")


class GroupCommit:
    """One writer thread for a store's single writes (see the module docstring). Started on the first
    write; `close` stops it after the writes already queued."""

    def __init__(self, store: RegistryStore, max_batch: int = MAX_BATCH):
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def run(self, job: Callable[[_Tx], T]) -> T:
        """Apply `job` (given the open transaction, its own recording time in `tx.now`) in the next
        batch; return its result once that batch is durable, or raise its error or the batch's."""
        return self.submit(job).result()

    def submit(self, job: Callable[[_Tx], T]) -> Future[T]:
        """`run` without waiting: the future is done once the batch is durable (or failed)."""
        future: Future[T] = Future()
        self._queue.put((job, future))
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="registry-group-commit", daemon=True)
                    self._thread.start()
        return future

    def close(self) -> None:
        """Stop the writer thread once the writes queued before this call are answered."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._store.close()
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            # A write whose caller gave up before it ran (a cancelled future) is not applied; the others
            # can no longer be cancelled.
            batch = [item for item in batch if item[1].set_running_or_notify_cancel()]
            if batch:
                self._commit(batch)
            if stop:
                self._store.close()
                return

    def _commit(self, batch: list[_Item]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._store._write() as tx:  # BEGIN IMMEDIATE ... COMMIT: one fsync for the batch
                for job, _ in batch:
                    outcomes.append(_apply(tx, job))
        except BaseException as exc:  # noqa: BLE001 (every caller of the batch must hear of it)
            for _, future in batch:
                future.set_exception(_fresh(exc))
            return
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _apply(tx: _Tx, job: Job) -> tuple[bool, Any]:
    """One write in its own savepoint: (True, result), or (False, its error) with its changes undone.
    When its changes cannot be undone alone (SQLite already rolled the transaction back, as it does on
    a full disk or an I/O error), the error is the batch's: it is raised and fails every write of it."""
    con = tx.con
    con.execute("SAVEPOINT single_write")
    try:
        value = job(_Tx(con, tx.hash, utc_now()))
    except Exception as exc:  # noqa: BLE001 (handed to the caller, raised in its thread)
        if not con.in_transaction:
            raise
        con.execute("ROLLBACK TO single_write")
        con.execute("RELEASE single_write")
        if isinstance(exc, sqlite3.DatabaseError):
            return False, SweepError(f"blacklist database error ({exc})")
        return False, exc
    con.execute("RELEASE single_write")
    return True, value
