"""The background worker that derives memories for async adds, from the job queue in the store.

An async add stores its episodes and a `derive` job in one transaction and answers 202; this
thread claims jobs in batches, up to `batch` jobs of one tenant (`engramdb.jobs.work_batch`),
and runs each batch with that tenant's `Memory`. The queue lives in the store, so a restart loses nothing: pending
jobs wait, and a job whose worker died while running is claimed again once it has not moved
for `stale_after_s`. Running a job twice is harmless (`Memory.run_jobs` derives only what is
missing).
"""

from __future__ import annotations

import threading

from engramdb.jobs import BATCH, MAX_ATTEMPTS, STALE_AFTER_S, work_batch
from engramdb.server.tenancy import Tenants

__all__ = ["JobWorker"]


class JobWorker:
    """One daemon thread polling the store's job queue.

    Args:
        tenants: where each job's tenant's `Memory` comes from.
        poll_s: how long to sleep when the queue is empty (`wake` cuts it short).
        stale_after_s: a running job not updated for this long is taken to be orphaned.
        max_attempts: a job claimed this many times without finishing is marked failed.
        batch: how many jobs of one tenant are claimed and derived together.
    """

    def __init__(
        self,
        tenants: Tenants,
        *,
        poll_s: float = 0.5,
        stale_after_s: float = STALE_AFTER_S,
        max_attempts: int = MAX_ATTEMPTS,
        batch: int = BATCH,
    ) -> None:
        self.tenants = tenants
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
        self.batch = batch
        self.done = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """The thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start polling (idempotent)."""
        if self.alive:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="engramdb-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the job at hand, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wake(self) -> None:
        """A job was just queued: look now instead of after the poll interval."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.run_once():
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def run_once(self) -> bool:
        """Claim and run one batch of jobs; False when the queue had none."""
        claimed, done = work_batch(
            self.tenants.store,
            self.tenants.memory,
            limit=self.batch,
            stale_after_s=self.stale_after_s,
            max_attempts=self.max_attempts,
        )
        self.done += done
        return claimed > 0
