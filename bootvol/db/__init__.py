"""Metadata storage: SQLAlchemy models, the session factory and Alembic migrations."""
