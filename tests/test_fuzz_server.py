"""OpenAPI-driven fuzz of the REST API (schemathesis): no request may get a 5xx.

The real app runs under uvicorn on loopback over a real SQLite store, with a real admin key.
Every operation of the app's own `/openapi.json` gets a fixed number of schema-valid examples
and a fixed number of schema-violating ones (derandomized, so a CI run repeats the last one);
the bound is the example count, and the pytest timeout stops a run that hangs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from engramdb.models.embed import OnnxMiniLM  # noqa: E402
from server_harness import Live, live_server, make_app  # noqa: E402

pytestmark = pytest.mark.timeout(900)

EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 30}
SEED_TALK = [
    {"role": "user", "content": "I moved to Denver last month."},
    {"role": "assistant", "content": "How do you like Colorado?"},
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """The import body: a string as it is (lone surrogates kept, as invalid UTF-8), else JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode("utf-8")


@pytest.fixture
def live(tmp_path: Path, embedder: OnnxMiniLM) -> Iterator[Live]:
    with live_server(make_app(tmp_path / "fuzz.sqlite", embedder)) as server:
        yield server


def test_no_request_gets_a_server_error(live: Live) -> None:
    key = live.key("fuzz", "admin")
    headers = {"Authorization": f"Bearer {key}"}
    with live.client(key) as client:  # something to find, update and delete
        for user in ("ana", "bob"):
            seeded = client.post("/v1/memories", json={"messages": SEED_TALK, "user_id": user})
            assert seeded.status_code == 200, seeded.text
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    no_negative: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        for mode, count in EXAMPLES.items():

            @settings(
                max_examples=count,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(data=st.data())
            def fuzz(data: st.DataObject) -> None:
                case = data.draw(operation.as_strategy(mode))  # noqa: B023
                response = case.call(base_url=live.url, headers=headers, timeout=60)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{response.text[:300]}"
                    )

            try:
                fuzz()
            except Unsatisfiable:
                # an operation without parameters or body has no invalid input to send
                assert mode is GenerationMode.NEGATIVE, operation.label
                no_negative.append(operation.label)
    total = sum(statuses.values())
    print(
        f"fuzz cases: {total} over {len(operations)} operations; statuses {dict(statuses)}; "
        f"no invalid input possible for {no_negative}"
    )
    assert not failures, "\n".join(failures[:20])
    assert total >= 10 * len(operations)
    assert any(200 <= status < 300 for status in statuses), "no request was accepted"
    assert any(400 <= status < 500 for status in statuses), "no request was refused"
