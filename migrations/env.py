"""Alembic's entry point: migrate the database that DATABASE_URL names.

A caller may hand over a URL through ``config.attributes["url"]`` (the tests
do); otherwise the same rules as the app apply, SQLite by default.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

import config as settings
from messenger.db import Database
from messenger.schema import metadata

alembic_config = context.config
url = alembic_config.attributes.get("url")
if url is None:
    # Run from the command line (the release step): log what is applied.
    url = settings.database_url()
    if alembic_config.config_file_name:
        fileConfig(alembic_config.config_file_name, disable_existing_loggers=False)

database = Database(url, pool_size=1)

with database.engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies tables.
        render_as_batch=not database.is_postgresql,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()

database.dispose()
