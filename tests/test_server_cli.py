"""The server's command line: `keys create|list|revoke`, `serve` (with and without auth)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engramdb.server.cli import server_app
from server_harness import cli_server

pytestmark = pytest.mark.timeout(300)

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(server_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.sqlite")
    code, out, err = invoke(
        "keys", "create", "--tenant", "acme", "--scope", "read", "--name", "bot", "--db", db
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("egm_") and len(secret) > 40
    assert "cannot be shown again" in err
    code, out, _ = invoke("keys", "list", "--db", db, "--json")
    assert code == 0
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert listed["tenant_id"] == "acme" and listed["scope"] == "read" and listed["name"] == "bot"
    assert "key_hash" not in listed and secret not in out
    invoke("keys", "create", "--tenant", "globex", "--db", db)
    code, out, _ = invoke("keys", "list", "--tenant", "globex", "--db", db)
    assert code == 0 and "globex" in out and "acme" not in out and "write" in out
    code, out, _ = invoke("keys", "revoke", listed["id"], "--db", db)
    assert code == 0 and listed["id"] in out
    code, out, _ = invoke("keys", "list", "--tenant", "acme", "--db", db)
    assert "revoked" in out
    code, _, err = invoke("keys", "revoke", listed["id"], "--db", db)
    assert code == 1 and err.startswith("Error:")


def test_keys_refuse_bad_input(tmp_path: Path) -> None:
    db = str(tmp_path / "bad.sqlite")
    code, _, err = invoke("keys", "create", "--tenant", "acme", "--scope", "root", "--db", db)
    assert code == 1 and err.startswith("Error: scope:")
    code, _, err = invoke("keys", "create", "--tenant", " ", "--db", db)
    assert code == 1 and err.startswith("Error: tenant:")
    code, out, _ = invoke("keys", "list", "--db", db)
    assert code == 0 and out == ""


def test_keys_work_without_the_server_extra(tmp_path: Path) -> None:
    """`keys create` in a process where the server's libraries cannot be imported."""
    script = (
        "import sys\n"
        "for name in ('fastapi', 'starlette', 'uvicorn', 'mcp'):\n"
        "    sys.modules[name] = None  # an import of it raises ImportError\n"
        "from engramdb.server.cli import server_app\n"
        "server_app(sys.argv[1:])\n"
    )
    db = str(tmp_path / "bare.sqlite")
    made = subprocess.run(
        [sys.executable, "-c", script, "keys", "create", "--tenant", "acme", "--db", db],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("egm_")
    code, out, _ = invoke("keys", "list", "--tenant", "acme", "--db", db)
    assert code == 0 and "acme" in out


def test_no_auth_only_on_loopback(tmp_path: Path) -> None:
    code, _, err = invoke(
        "serve", "--db", str(tmp_path / "x.sqlite"), "--no-auth", "--host", "0.0.0.0"
    )
    assert code == 1 and "loopback" in err


def test_served_key_from_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "served.sqlite"
    secret = invoke("keys", "create", "--tenant", "acme", "--db", str(db))[1].strip()
    with cli_server(db) as url:
        headers = {"Authorization": f"Bearer {secret}"}
        added = httpx.post(
            f"{url}/v1/memories",
            json={"messages": "I play the cello.", "user_id": "ana"},
            headers=headers,
        )
        assert added.status_code == 200
        assert added.json()["operations"][0]["op"] == "ADD"
        assert httpx.get(f"{url}/v1/memories", params={"user_id": "ana"}).status_code == 401


def test_no_auth_server_serves_the_default_tenant_to_loopback_names_only(tmp_path: Path) -> None:
    db = tmp_path / "open.sqlite"
    with cli_server(db, "--no-auth") as url:
        added = httpx.post(f"{url}/v1/memories", json={"messages": "hello", "user_id": "ana"})
        assert added.status_code == 200
        listed = httpx.get(f"{url}/v1/memories", params={"user_id": "ana"}).json()
        assert listed[0]["scope"]["tenant_id"] == "default"
        port = url.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
            assert httpx.get(f"{url}/healthz", headers={"Host": host}).status_code == 200
        rebound = httpx.get(
            f"{url}/v1/memories", params={"user_id": "ana"}, headers={"Host": "evil.example"}
        )
        assert rebound.status_code == 421
        assert rebound.json()["error"]["code"] == "misdirected_request"
