"""Alembic environment: migrations run against the connection handed in by gateway.migrate."""

from alembic import context

from gateway.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
