"""The background worker that derives memories for async adds, from the job queue in the store.

An async add stores its episodes and a `derive` job in one transaction and answers 202; this
thread claims jobs one at a time and runs them with the job's tenant's `Memory`. The queue lives
in the store, so a restart loses nothing: pending jobs wait, and a job whose worker died while
running is claimed again once it has not moved for `stale_after_s`. Running a job twice is
harmless (`Memory.run_job` derives only what is missing).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from engramdb.errors import EngramError
from engramdb.server.tenancy import Tenants
from engramdb.timestamps import utcnow
from engramdb.types import Job, JobStatus

__all__ = ["JobWorker"]

log = logging.getLogger("engramdb.server.worker")


class JobWorker:
    """One daemon thread polling the store's job queue.

    Args:
        tenants: where each job's tenant's `Memory` comes from.
        poll_s: how long to sleep when the queue is empty (`wake` cuts it short).
        stale_after_s: a running job not updated for this long is taken to be orphaned.
        max_attempts: a job claimed this many times without finishing is marked failed.
    """

    def __init__(
        self,
        tenants: Tenants,
        *,
        poll_s: float = 0.5,
        stale_after_s: float = 120.0,
        max_attempts: int = 5,
    ) -> None:
        self.tenants = tenants
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
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
        """Claim and run one job; False when the queue had none."""
        job = self.tenants.store.claim_job(utcnow(), self.stale_after_s)
        if job is None:
            return False
        if job.attempts > self.max_attempts:
            self._finish(job, "failed", error=f"gave up after {job.attempts - 1} attempts")
            return True
        try:
            result = self.tenants.memory(job.tenant_id).run_job(job)
        except EngramError as exc:  # the job itself cannot be done: retrying will not help
            log.warning("job %s failed: %s", job.id, exc)
            self._finish(job, "failed", error=str(exc))
        except Exception as exc:  # a fault of this process: put the job back for another try
            log.exception("job %s raised; it goes back to the queue", job.id)
            self._finish(job, "pending", error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(job, "done", result=result.model_dump(mode="json"))
            self.done += 1
        return True

    def _finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        self.tenants.store.finish_job(
            job.id, status=status, result=result, error=error, now=utcnow()
        )
