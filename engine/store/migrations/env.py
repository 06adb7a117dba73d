"""Alembic environment: the store runs migrations itself (``engine.store.open_store``) on a connection
it passes in ``config.attributes['connection']``; there is no alembic.ini."""

from alembic import context

from engine.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through engine.store.open_store(), which passes a connection")

# render_as_batch lets later migrations alter columns on SQLite, which has no ALTER COLUMN.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
