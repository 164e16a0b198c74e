"""The job queue: deferred adds, claimed by workers (how a claim locks is each backend's own)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from engramdb.store.sql.backend import SQLBackend
from engramdb.store.sql.tables import JOBS
from engramdb.types import Job, JobOutcome

__all__ = ["JobRows"]


class JobRows(SQLBackend):
    """The `JobStore` part of a store, but `claim_jobs`."""

    def enqueue_job(self, job: Job) -> None:
        with self._writing(None) as session:
            session.execute(JOBS.insert(), JOBS.values(job, self.dialect))

    def finish_jobs(self, outcomes: Sequence[JobOutcome], now: datetime) -> None:
        d = self.dialect
        with self._writing(None) as session:
            session.executemany(
                "UPDATE jobs SET status = ?, result = ?, error = ?, updated_at = ? WHERE id = ?",
                [
                    (
                        o.status,
                        None if o.result is None else d.write_document(o.result),
                        o.error,
                        d.write_time(now),
                        o.job_id,
                    )
                    for o in outcomes
                ],
            )

    def get_job(self, tenant_id: str, job_id: str) -> Job | None:
        with self._primary() as session:
            row = session.execute(
                f"SELECT {JOBS.names()} FROM jobs WHERE tenant_id = ? AND id = ?",
                (tenant_id, job_id),
            ).fetchone()
        return None if row is None else JOBS.load(row, self.dialect)

    def list_jobs(self, tenant_id: str, *, limit: int, offset: int) -> list[Job]:
        with self._primary() as session:
            rows = session.execute(
                f"SELECT {JOBS.names()} FROM jobs WHERE tenant_id = ? "
                f"ORDER BY created_at, {self.dialect.seq} LIMIT ? OFFSET ?",
                (tenant_id, limit, offset),
            ).fetchall()
        return JOBS.load_all(rows, self.dialect)
