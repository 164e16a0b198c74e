"""`SQLStore`: every concept's shared SQL in one base class for the two backends."""

from __future__ import annotations

from engramdb.store.sql.accounts import AccountRows
from engramdb.store.sql.episodes import EpisodeRows
from engramdb.store.sql.graph import GraphRows
from engramdb.store.sql.history import HistoryRows
from engramdb.store.sql.jobs import JobRows
from engramdb.store.sql.keys import KeyRows
from engramdb.store.sql.rerank import RerankRows

__all__ = ["SQLStore"]


class SQLStore(AccountRows, EpisodeRows, HistoryRows, GraphRows, KeyRows, JobRows, RerankRows):
    """What both stores do in the same SQL; a backend adds its connections, memory writes,
    search channels, vectors, job claims and change tokens."""
