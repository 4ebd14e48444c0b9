"""The migrations build exactly the schema the ORM models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from acceldoctor.portal.db.engine import migrate
from acceldoctor.portal.db.models import Base


def test_migrated_schema_matches_the_models(database):
    migrate(database)  # a second upgrade on a migrated database changes nothing
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], "the models changed without a migration (add one under db/migrations/versions)"
