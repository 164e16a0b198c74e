"""Clients for an engramdb server: `Memory`'s methods over HTTP (needs the `client` extra)."""

from engramdb.client.clients import AsyncClient, Client
from engramdb.client.retry import Retry

__all__ = ["AsyncClient", "Client", "Retry"]
