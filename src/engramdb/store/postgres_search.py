"""The search channels of the PostgreSQL store, in SQL: BM25 over `tsvector` columns, and the
choice between an exact scan and pgvector's HNSW index.

Lexical channel: two `tsvector` columns (english configuration), a memory's own words and the
words it borrows (`store.base.around_text`), each with a GIN index, ranked by BM25 computed in
SQL over the matching rows (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25
and Beyond", 2009; `k1`, `b` as there; binary term frequency). Vector channel: exact cosine
distance over the scope's rows through the btree scope index when the scope is small,
pgvector's HNSW index with iterative scans (pgvector >= 0.8) when it is large (`use_hnsw`).
"""

from __future__ import annotations

from engramdb.store.base import LexicalField

__all__ = [
    "COMMON_LEXEMES",
    "DEFAULT_EXACT_MAX_ROWS",
    "FIELDS",
    "MAX_SCAN_TUPLES",
    "MAX_TERMS",
    "lexical_query",
    "use_hnsw",
]

#: Scopes with fewer memories than this are searched exactly (measured in docs/scaling.md).
DEFAULT_EXACT_MAX_ROWS = 10_000
#: pgvector's default `hnsw.max_scan_tuples`: how far an iterative scan walks before it stops.
MAX_SCAN_TUPLES = 20_000
K1 = 1.2
B = 0.75
#: Query words ranked at most (a query's words beyond are left out).
MAX_TERMS = 32

#: The `tsvector` column of each field of the text index.
FIELDS: dict[LexicalField, str] = {"text": "tsv", "around": "tsv_around"}


def use_hnsw(scope_rows: int, table_rows: float, limit: int, exact_max_rows: int) -> bool:
    """Whether to walk the HNSW index rather than scan the scope exactly.

    Exact search costs in proportion to the scope's rows; the index walk costs about the same
    for any scope, but it visits rows of every scope and keeps those the filter admits, so it
    only pays when the scope is large and a large enough share of the table that an iterative
    scan finds `limit` of its rows within `MAX_SCAN_TUPLES`.
    """
    if scope_rows < exact_max_rows:
        return False
    share = scope_rows / max(table_rows, scope_rows, 1.0)
    return share * MAX_SCAN_TUPLES >= 4 * limit


def lexical_query(where: str, terms: int, column: str = "tsv") -> str:
    """BM25 over the rows the filter admits whose `column` contains any of `terms` query words.

    Parameters: the words (one each), the filter's, tenant and user (for the collection
    size), the limit. A word counts once per memory (binary term frequency: chat turns rarely
    repeat a word), so each row is scored from `tsv @@ word` tests without unnesting it;
    document frequencies and the average length come from the matching rows, the collection
    size from the scope's row count.
    """
    words = range(terms)
    queries = ", ".join(f"plainto_tsquery('english'::regconfig, ?) AS q{i}" for i in words)
    any_word = " || ".join(f"q{i}" for i in words)
    has = ", ".join(f"m.{column} @@ q.q{i} AS h{i}" for i in words)
    df = ", ".join(f"count(*) FILTER (WHERE h{i})::float8 AS d{i}" for i in words)
    idf = " + ".join(
        f"CASE WHEN c.h{i} THEN ln(1.0 + (n.n - s.d{i} + 0.5) / (s.d{i} + 0.5)) ELSE 0 END"
        for i in words
    )
    return f"""
WITH q AS (SELECT {queries}),
c AS MATERIALIZED (
    SELECT m.id, m.seq, length(m.{column}) AS dl, {has}
    FROM memories m, q
    WHERE m.{column} @@ (SELECT {any_word} FROM q) AND {where}
),
s AS (
    SELECT {df}, greatest(avg(dl)::float8, 1.0) AS avgdl, count(*)::float8 AS matched FROM c
),
n AS (
    SELECT greatest(
        coalesce((SELECT memories FROM scopes WHERE tenant_id = ? AND user_id = ?), 0),
        (SELECT matched FROM s)
    )::float8 AS n
)
SELECT c.id, ({idf}) * {K1 + 1.0} / (1.0 + {K1} * (1.0 - {B} + {B} * c.dl / s.avgdl)) AS score
FROM c, s, n
ORDER BY score DESC, c.seq
LIMIT ?
"""


#: Each query word with the frequency of its lexeme among the most common ones of `tsv`.
COMMON_LEXEMES = """
SELECT w, s.f
FROM unnest(?::text[]) AS w
JOIN (
    SELECT x.e, x.f
    FROM pg_stats, unnest(most_common_elems::text::text[], most_common_elem_freqs) AS x(e, f)
    WHERE schemaname = current_schema() AND tablename = 'memories' AND attname = 'tsv'
) AS s ON s.e = (ts_lexize('english_stem', w))[1]
"""
