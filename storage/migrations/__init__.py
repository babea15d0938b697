"""Alembic migrations of trainq's schema; run them with ``storage.Database.upgrade()``."""
