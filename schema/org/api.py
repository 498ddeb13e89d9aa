"""Store queries and mutations: HQ runs stores, visitors find the nearest."""

from __future__ import annotations

import strawberry

from models import StoreStatus
from resolvers import Perm
from resolvers import org as org_resolvers
from resolvers.context import Context
from resolvers.org import MAX_RADIUS_KM, StoreFields, StoreFilter
from schema.core.common import Connection, UserError, decode_id
from schema.core.permissions import requires
from schema.core.personal import not_personal
from schema.core.transaction import MutationTransaction
from schema.org.types import OpeningHoursInput, Store


@strawberry.input
class StoreFilterInput:
    city: str | None = None
    status: StoreStatus | None = None
    search: str | None = strawberry.field(default=None, description="Part of the name or code")


@strawberry.input
class CreateStoreInput:
    code: str = not_personal()
    name: str = not_personal()
    city: str
    address: str = not_personal()
    lat: float = not_personal()
    lng: float = not_personal()
    phone: str | None = not_personal(default=None)
    timezone: str = "Asia/Shanghai"
    hours: list[OpeningHoursInput] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateStoreInput:
    id: strawberry.ID
    name: str | None = not_personal(default=None)
    city: str | None = None
    address: str | None = not_personal(default=None)
    lat: float | None = not_personal(default=None)
    lng: float | None = not_personal(default=None)
    phone: str | None = not_personal(default=None)
    timezone: str | None = None
    hours: list[OpeningHoursInput] | None = None


@strawberry.input
class SetStoreStatusInput:
    id: strawberry.ID
    status: StoreStatus


@strawberry.type
class StorePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
    store: Store | None = None


def _fields(data: CreateStoreInput | UpdateStoreInput) -> StoreFields:
    hours = [h.as_dict() for h in data.hours] if data.hours is not None else None
    return StoreFields(
        code=getattr(data, "code", None),
        name=data.name,
        city=data.city,
        address=data.address,
        phone=data.phone,
        lat=data.lat,
        lng=data.lng,
        timezone=data.timezone,
        hours=hours,
    )


@strawberry.type
class StoreQuery:
    @strawberry.field(description="Stores, by id. Anyone may list open stores; HQ also sees those being prepared.")
    async def stores(
        self,
        info: strawberry.Info[Context, None],
        filter: StoreFilterInput | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Store]:
        f = filter or StoreFilterInput()
        flt = StoreFilter(city=f.city, status=f.status, search=f.search)
        page = await org_resolvers.stores(info.context, flt, first=first, after=after)
        return Connection[Store].of(page, Store.from_model)

    @strawberry.field
    async def store(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> Store | None:
        return await Store.load(info.context, decode_id(id, "Store"))

    @strawberry.field(description=f"Open stores within radiusKm (at most {MAX_RADIUS_KM:g}), nearest first.")
    async def nearby_stores(
        self,
        info: strawberry.Info[Context, None],
        lat: float,
        lng: float,
        radius_km: float = 10.0,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Store]:
        page = await org_resolvers.nearby_stores(
            info.context, lat=lat, lng=lng, radius_km=radius_km, first=first, after=after
        )
        return Connection[Store].of(page, lambda pair: Store.from_model(pair[0], pair[1]))


@strawberry.type
class StoreMutation:
    @strawberry.mutation(extensions=[*requires(Perm.STORE_MANAGE), MutationTransaction()])
    async def create_store(self, info: strawberry.Info[Context, None], input: CreateStoreInput) -> StorePayload:
        store = await org_resolvers.create_store(info.context, _fields(input))
        return StorePayload(store=Store.from_model(store))

    @strawberry.mutation(extensions=[*requires(Perm.STORE_MANAGE), MutationTransaction()])
    async def update_store(self, info: strawberry.Info[Context, None], input: UpdateStoreInput) -> StorePayload:
        store = await org_resolvers.update_store(info.context, decode_id(input.id, "Store"), _fields(input))
        return StorePayload(store=Store.from_model(store))

    @strawberry.mutation(
        extensions=[*requires(Perm.STORE_MANAGE), MutationTransaction()],
        description="Open a store to the public, or close it (PREPARING -> OPEN <-> CLOSED).",
    )
    async def set_store_status(self, info: strawberry.Info[Context, None], input: SetStoreStatusInput) -> StorePayload:
        store = await org_resolvers.set_store_status(
            info.context, decode_id(input.id, "Store"), StoreStatus(input.status)
        )
        return StorePayload(store=Store.from_model(store))
