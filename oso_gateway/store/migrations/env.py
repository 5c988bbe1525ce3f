"""Alembic environment: run on the connection that ``oso_gateway.store.migrate`` hands over.

No alembic.ini: ``migrate.alembic_config`` builds the configuration in code and puts the open
connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from oso_gateway.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via oso_gateway.store.migrate
    raise RuntimeError("run migrations through `oso-gateway db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
