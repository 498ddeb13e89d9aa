"""The one schema: every area's queries and mutations merged."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.tools import merge_types

from schema.audit import AuditQuery
from schema.auth import AuthMutation, AuthQuery
from schema.errors import ErrorPresenter
from schema.node import NodeQuery
from schema.staff import StaffMutation, StaffQuery
from schema.stores import StoreMutation, StoreQuery

Query = merge_types("Query", (NodeQuery, AuthQuery, StoreQuery, StaffQuery, AuditQuery))
Mutation = merge_types("Mutation", (AuthMutation, StoreMutation, StaffMutation))


class ChainSchema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        # ErrorPresenter logs what is unexpected, once, with the request id; expected errors are not noise.
        return None


schema = ChainSchema(query=Query, mutation=Mutation, extensions=[ErrorPresenter])
