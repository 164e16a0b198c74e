"""Working off the job queue: claim a batch of jobs, run it, record each job's outcome.

The queue lives in the store (`Store.claim_jobs`); `Memory.run_pending` works off one tenant's
jobs, the server's worker thread everyone's. A batch is several jobs of one tenant, so a burst
of async one-message adds is derived (and embedded) as one batch. A batch that fails is run
again job by job, so one job that cannot be done does not hold back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from engramdb.errors import EngramError, InvalidInput
from engramdb.store import Store
from engramdb.timestamps import utcnow
from engramdb.types import AddResult, Job, JobOutcome

__all__ = [
    "BATCH",
    "MAX_ATTEMPTS",
    "STALE_AFTER_S",
    "JobRunner",
    "check_jobs",
    "work_batch",
    "work_off",
]

log = logging.getLogger("engramdb.jobs")

#: jobs of one tenant claimed and derived together
BATCH = 32
#: a job claimed this many times without finishing is marked failed
MAX_ATTEMPTS = 5
#: a running job not updated for this long is taken to be orphaned (its worker died)
STALE_AFTER_S = 120.0


class JobRunner(Protocol):
    """What runs a tenant's jobs (a `Memory`)."""

    def run_jobs(self, jobs: Sequence[Job]) -> list[AddResult]: ...


def check_jobs(jobs: Sequence[Job], tenant_id: str) -> None:
    """Refuse a batch that `tenant_id`'s `Memory` cannot run: a job of another tenant, of an
    unknown kind, or naming no list of episodes.

    Raises:
        InvalidInput: naming the job and its field.
    """
    for i, job in enumerate(jobs):
        if job.tenant_id != tenant_id:
            raise InvalidInput(f"jobs[{i}].tenant_id", "the job belongs to another tenant")
        if job.kind != "derive":
            raise InvalidInput(f"jobs[{i}].kind", f"unknown job kind {job.kind!r}")
        ids = job.payload.get("episode_ids")
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise InvalidInput(f"jobs[{i}].payload.episode_ids", "expected a list of ids")


def work_batch(
    store: Store,
    runner: Callable[[str], JobRunner],
    *,
    limit: int = BATCH,
    stale_after_s: float = STALE_AFTER_S,
    max_attempts: int = MAX_ATTEMPTS,
    tenant_id: str | None = None,
) -> tuple[int, int]:
    """Claim up to `limit` jobs of one tenant and run them with `runner(tenant_id)`.

    A job claimed more than `max_attempts` times is marked failed; a job that cannot be done
    (an `EngramError`) is marked failed with the reason; any other fault puts the job back
    in the queue for another try.

    Returns:
        How many jobs were claimed (0: the queue had none) and how many of them were done.
    """
    jobs = store.claim_jobs(utcnow(), stale_after_s, limit=limit, tenant_id=tenant_id)
    outcomes = [
        JobOutcome(job.id, "failed", error=f"gave up after {job.attempts - 1} attempts")
        for job in jobs
        if job.attempts > max_attempts
    ]
    runnable = [job for job in jobs if job.attempts <= max_attempts]
    batches = [runnable] if runnable else []
    while batches:
        batch = batches.pop()
        try:
            results = runner(batch[0].tenant_id).run_jobs(batch)
        except Exception as exc:
            if len(batch) > 1:
                batches.extend([job] for job in reversed(batch))
            elif isinstance(exc, EngramError):  # the job itself cannot be done
                log.warning("job %s failed: %s", batch[0].id, exc)
                outcomes.append(JobOutcome(batch[0].id, "failed", error=str(exc)))
            else:  # a fault of this process: the job goes back for another try
                log.exception("job %s raised; it goes back to the queue", batch[0].id)
                error = f"{type(exc).__name__}: {exc}"
                outcomes.append(JobOutcome(batch[0].id, "pending", error=error))
            continue
        outcomes.extend(
            JobOutcome(job.id, "done", result=result.model_dump(mode="json"))
            for job, result in zip(batch, results, strict=True)
        )
    if outcomes:
        store.finish_jobs(outcomes, utcnow())
    return len(jobs), sum(o.status == "done" for o in outcomes)


def work_off(
    store: Store, runner: JobRunner, tenant_id: str, *, limit: int, stale_after_s: float
) -> int:
    """Run `tenant_id`'s queued jobs with `runner`, `limit` at a time, until none is left;
    returns how many were done (failed ones are marked failed in the queue)."""
    done = 0
    while True:
        claimed, ran = work_batch(
            store,
            lambda _tenant: runner,
            limit=limit,
            stale_after_s=stale_after_s,
            tenant_id=tenant_id,
        )
        if not claimed:
            return done
        done += ran
