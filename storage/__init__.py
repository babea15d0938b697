"""storage: the system of record (SQLAlchemy 2.x on SQLite or PostgreSQL)."""
