"""Alembic environment: the portal runs migrations itself (`acceldoctor.portal.db.engine.migrate`) on the
connection it hands over; `alembic` on the command line is not needed."""

from __future__ import annotations

from alembic import context

from acceldoctor.portal.db.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the portal's migrations through acceldoctor.portal.db.engine.migrate")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
