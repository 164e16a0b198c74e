"""The SQL both stores share: tables described once, each concept's statements written once.

`dialect` says what differs between SQLite and PostgreSQL in that SQL, `tables` maps rows to
models, `backend` is what a store gives the shared code (sessions and hooks), and one module
per concept holds its statements (`episodes`, `memories`, `history`, `graph`, `keys`, `jobs`,
`rerank`, `accounts`); `store.SQLStore` puts them together.
"""
