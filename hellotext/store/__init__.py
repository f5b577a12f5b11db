"""Storage: one schema, two engines (SQLite file in WAL mode, PostgreSQL through psycopg 3)."""
