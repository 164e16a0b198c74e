"""API keys (their hashes only) and the store-wide settings (`meta`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engramdb.store.sql.backend import SQLBackend
from engramdb.store.sql.tables import API_KEYS
from engramdb.timestamps import utcnow
from engramdb.types import ApiKey

__all__ = ["KeyRows"]


class KeyRows(SQLBackend):
    """The `KeyStore` and `MetaStore` parts of a store."""

    def get_meta(self, key: str) -> str | None:
        with self._primary() as session:
            row = session.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._writing(None) as session:
            session.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def add_api_key(self, key: ApiKey) -> None:
        with self._writing(None) as session:
            session.execute(API_KEYS.insert(), API_KEYS.values(key, self.dialect))

    def _api_keys(self, where: str, params: Sequence[Any]) -> list[ApiKey]:
        with self._primary() as session:
            rows = session.execute(
                f"SELECT {API_KEYS.names()} FROM api_keys WHERE {where} "
                f"ORDER BY created_at, {self.dialect.seq}",
                params,
            ).fetchall()
        return API_KEYS.load_all(rows, self.dialect)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        found = self._api_keys("key_hash = ?", (key_hash,))
        return found[0] if found else None

    def list_api_keys(self, tenant_id: str | None) -> list[ApiKey]:
        if tenant_id is None:
            return self._api_keys("1 = 1", ())
        return self._api_keys("tenant_id = ?", (tenant_id,))

    def revoke_api_key(self, key_id: str) -> bool:
        with self._writing(None) as session:
            done = session.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self.dialect.write_time(utcnow()), key_id),
            )
            return done.rowcount > 0
