"""Alembic environment: migrate on the (locked) connection `storage.schema` hands over.

Run through `mipomersen-cds db upgrade` or `cds_service.records.storage.schema.upgrade`,
never with an alembic.ini. To add a revision after changing `storage/models.py`:

    python -c "from alembic import command; from cds_service.records.storage.schema import *; \\
        command.revision(alembic_config(), 'what changed', rev_id='0002')"

then write its `upgrade()` and `downgrade()`; `tests/storage/test_schema.py` fails until the
migrations and the models describe the same schema.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cds_service.records.storage.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run migrations through cds_service.records.storage.schema, with a connection"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():  # schema.py holds the migration lock already
    context.run_migrations()
