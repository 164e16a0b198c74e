"""Every Python example of docs/integrations.md runs as written, against a real server for the
ones that talk to one (its URL and key in `ENGRAMDB_URL` and `ENGRAMDB_KEY`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_support import Apis, serving
from engramdb.models.embed import OnnxMiniLM

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> Iterator[Apis]:
    with serving(tmp_path_factory.mktemp("docs") / "engram.sqlite", embedder) as served:
        yield served


def test_every_integration_has_an_example() -> None:
    joined = "\n".join(EXAMPLES)
    for name in ("Client(", "AsyncClient(", "AsyncMemory(", "EngramStore(",
                 "EngramChatMessageHistory(", "EngramRetriever(", "EngramMemoryBlock(",
                 "EngramSession(", "memory_tools("):  # fmt: skip
        assert name in joined, name


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_example_runs(
    example: str,
    apis: Apis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENGRAMDB_URL", apis.live.url)
    monkeypatch.setenv("ENGRAMDB_KEY", apis.admin_key)
    exec(compile(example, str(DOC), "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert "Denver" in printed or "Eva" in printed, printed
