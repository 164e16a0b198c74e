"""The import contract of DESIGN.md ("Rules of the road"), read from the source: each package
imports only from the layers below it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "engramdb"

#: What each package may import of engramdb (its own modules aside); a leaf imports nothing.
ALLOWED: dict[str, set[str]] = {
    "text": set(),
    "types": set(),
    "errors": set(),
    "timestamps": {"errors"},
    "models": {"errors"},
    "store": {"errors", "timestamps", "types"},
    "topics": {"models"},
    "guard": {"errors", "models", "store", "timestamps", "types"},
    "retrieve": {"config", "models", "store", "text", "topics", "types"},
    "ingest": {"errors", "guard", "models", "store", "text", "timestamps", "topics", "types"},
    # the server calls the facade layer only: `Memory`, the parts it is wired from, API keys
    "server": {
        "config",
        "engramdb",
        "errors",
        "jobs",
        "keys",
        "memory",
        "parts",
        "timestamps",
        "types",
    },
}
#: SQL a facade must not write: it hands over to the store and the pipelines.
_SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b", re.I)


def _package(module: str) -> str:
    """`engramdb.store.sql.tables` -> `store`; `engramdb` itself -> `engramdb`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "engramdb"


def imports_of(package: str, source: Path = SOURCE) -> dict[str, set[str]]:
    """For each module of `package`, the other engramdb packages it imports."""
    folder = source / package
    files = sorted(folder.rglob("*.py")) if folder.is_dir() else [source / f"{package}.py"]
    found: dict[str, set[str]] = {}
    for path in files:
        names: list[str] = []
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.append(node.module)
            elif isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
        found[str(path.relative_to(source))] = {
            _package(n) for n in names if n == "engramdb" or n.startswith("engramdb.")
        } - {package}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        module: sorted(used - ALLOWED[package])
        for module, used in imports_of(package).items()
        if used - ALLOWED[package]
    }
    assert not wrong, f"{package} reaches up or across: {wrong}"


def test_the_contract_sees_a_wrong_import(tmp_path: Path) -> None:
    """An import written inside a function of a subpackage is found, as a test of the test."""
    (tmp_path / "store" / "sql").mkdir(parents=True)
    (tmp_path / "store" / "sql" / "late.py").write_text(
        "import engramdb.store.base\n\ndef f():\n    from engramdb.retrieve import search\n"
    )
    assert imports_of("store", tmp_path) == {"store/sql/late.py": {"retrieve"}}


def store_work(path: Path) -> list[str]:
    """What a facade module does that is the store's or a pipeline's: SQL it writes,
    transactions it runs and history entries it builds by hand."""
    tree = ast.parse(path.read_text("utf-8"))
    sql = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _SQL.search(node.value)
    ]
    called = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    return sql + sorted(called & {"transaction", "append_history", "HistoryEntry", "execute"})


def test_memory_is_a_facade() -> None:
    """The edits that log history are `ingest/edits.py`'s, the SQL is the store's."""
    assert store_work(SOURCE / "memory.py") == []


def test_the_facade_check_sees_store_work(tmp_path: Path) -> None:
    (tmp_path / "memory.py").write_text(
        "def delete(store, entry):\n"
        "    with store.transaction():\n"
        "        store.append_history('t', [entry])\n"
        "        store.execute('DELETE FROM memories WHERE id = ?')\n"
    )
    assert store_work(tmp_path / "memory.py") == [
        "DELETE FROM memories WHERE id = ?",
        "append_history",
        "execute",
        "transaction",
    ]
