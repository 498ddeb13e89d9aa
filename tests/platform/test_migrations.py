"""Alembic is the only way tables are made: the migrated database matches the models exactly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import models


@pytest.mark.postgres_too
async def test_models_and_migrations_agree(state):
    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, models.Base.metadata)

    async with state.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


def test_every_relationship_refuses_lazy_loading():
    for mapper in models.Base.registry.mappers:
        for rel in mapper.relationships:
            assert rel.lazy == "raise", f"{mapper.class_.__name__}.{rel.key} must be lazy='raise'"
