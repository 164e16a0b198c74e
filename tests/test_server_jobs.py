"""Async adds and the job worker: 202 only once the episodes are stored, and the derivation
survives a restart of the server (the queue lives in the store)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from engramdb.keys import create_key
from engramdb.models.embed import OnnxMiniLM
from engramdb.server.tenancy import Tenants
from engramdb.server.worker import JobWorker
from engramdb.store import open_store
from engramdb.timestamps import utcnow
from server_harness import cli_server, live_server, make_app

pytestmark = pytest.mark.timeout(300)

TALK = [
    {"role": "user", "content": "My sister Lena lives in Oslo."},
    {"role": "user", "content": "I'm allergic to peanuts."},
]


EPISODIC = {f"user: {m['content']}" for m in TALK}


def episodic_texts(client: httpx.Client) -> set[str]:
    listed = client.get("/v1/memories", params={"user_id": "ana", "kinds": "episodic"}).json()
    return {m["text"] for m in listed}


def wait_for_job(client: httpx.Client, job_id: str, *, rounds: int = 600) -> dict[str, Any]:
    job: dict[str, Any] = {}
    for _ in range(rounds):
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job still {job.get('status')} after {rounds} polls: {job}")


def enqueue(client: httpx.Client) -> dict[str, Any]:
    response = client.post(
        "/v1/memories", params={"async": "true"}, json={"messages": TALK, "user_id": "ana"}
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def test_pending_job_completes_after_a_restart(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    db = tmp_path / "jobs.sqlite"
    with live_server(make_app(db, embedder, worker=False)) as live:
        key = live.key("acme")
        with live.client(key) as client:
            queued = enqueue(client)
            assert client.get(f"/v1/jobs/{queued['job_id']}").json()["status"] == "pending"
            # the episodes are durable already; nothing is searchable until derivation
            assert client.get("/v1/stats", params={"user_id": "ana"}).json()["episodes"] == 2
            assert client.get("/v1/memories", params={"user_id": "ana"}).json() == []
    with live_server(make_app(db, embedder)) as live, live.client(key) as client:
        job = wait_for_job(client, queued["job_id"])
        assert job["status"] == "done" and job["attempts"] == 1
        texts = {op["text"] for op in job["result"]["operations"]}
        assert texts >= EPISODIC and {op["op"] for op in job["result"]["operations"]} == {"ADD"}
        hits = client.post(
            "/v1/memories/search", json={"query": "peanut allergy", "user_id": "ana"}
        )
        assert any("peanuts" in h["text"] for h in hits.json()[:3])


def test_job_orphaned_while_running_is_claimed_again(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    db = tmp_path / "stale.sqlite"
    with live_server(make_app(db, embedder, worker=False)) as live:
        key = live.key("acme")
        with live.client(key) as client:
            queued = enqueue(client)
        claimed = live.store.claim_jobs(utcnow(), 60.0)  # a worker takes it, then its process dies
        assert [job.id for job in claimed] == [queued["job_id"]]
    app = make_app(db, embedder, job_stale_after_s=0.3)
    with live_server(app) as live, live.client(key) as client:
        job = wait_for_job(client, queued["job_id"])
        assert job["status"] == "done" and job["attempts"] == 2
        assert episodic_texts(client) == EPISODIC


def test_restart_of_the_real_process(tmp_path: Path) -> None:
    """`engramdb serve --no-worker` queues; a later `engramdb serve` on the same file derives."""
    db = tmp_path / "process.sqlite"
    store = open_store(str(db))
    key = create_key(store, tenant_id="acme", scope="write")[1]
    store.close()
    headers = {"Authorization": f"Bearer {key}"}
    with (
        cli_server(db, "--no-worker") as url,
        httpx.Client(base_url=url, headers=headers) as client,
    ):
        queued = enqueue(client)
    with cli_server(db) as url, httpx.Client(base_url=url, headers=headers) as client:
        job = wait_for_job(client, queued["job_id"])
        assert job["status"] == "done"
        assert episodic_texts(client) == EPISODIC


def test_a_job_that_keeps_dying_is_given_up(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    store = open_store(str(tmp_path / "poison.sqlite"))
    tenants = Tenants(store, embedder)
    try:
        result = tenants.memory("acme").add("hello", user_id="ana", wait=False)
        assert result.job_id is not None
        for _ in range(3):  # three workers claim it and die
            assert store.claim_jobs(utcnow(), 0.0)
        worker = JobWorker(tenants, max_attempts=3, stale_after_s=0.0)
        assert worker.run_once()
        job = store.get_job("acme", result.job_id)
        assert job is not None and job.status == "failed"
        assert job.error == "gave up after 3 attempts"
        assert not worker.run_once()
    finally:
        tenants.close()
