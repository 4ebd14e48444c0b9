"""The portal's database: typed ORM models, the engine (SQLite or PostgreSQL) and the Alembic migrations."""
