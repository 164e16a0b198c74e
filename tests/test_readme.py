"""The README's SDK example runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def sdk_example() -> str:
    """The first Python block under "The SDK in ten lines"."""
    text = README.read_text("utf-8")
    section = text[text.index("## The SDK in ten lines") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's SDK section has no Python block"
    return found.group(1)


def test_the_sdk_example_prints_what_it_promises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the example writes engramdb.sqlite where it runs
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(sdk_example(), str(README), "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[0] == "Ana lives in Boulder"  # the newer fact, first
    assert "Denver" in lines[1] and "Boulder" not in lines[1]  # as of before the move
    assert "supersedes 'Denver'" in lines[2]  # the history names what it replaced
    assert os.path.exists(tmp_path / "engramdb.sqlite")
