"""Output writers: the terminal table, NDJSON/CSV/field lines, Elasticsearch bulk files and the SQLite store."""
