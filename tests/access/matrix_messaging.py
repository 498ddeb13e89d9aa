"""The access matrix rows for messages: members' consent and inbox, HQ's templates, sends and message log."""

from __future__ import annotations

from typing import Any

from models import MessageTopic
from services.messaging import admin
from services.platform.db import write_transaction
from tests.conftest import gid, pk
from tests.factories import HQ


async def _template(chain, state) -> dict[str, Any]:
    async with write_transaction(state.sessionmaker) as session:
        template = await admin.create_template(
            session, HQ, key="matrix", topic=MessageTopic.PROMOTIONS, title="t", body="Hi {name}", variables=["name"]
        )
    return {"t": gid("MessageTemplate", template.id)}


async def _send(chain, state) -> dict[str, Any]:
    given = await _template(chain, state)
    async with write_transaction(state.sessionmaker) as session:
        send = await admin.send_message(
            session,
            HQ,
            template_id=pk(given["t"]),
            variables={"name": "x"},
            audience=admin.Audience(segment="VIP"),
            key="matrix-send",
        )
    return {"id": gid("MessageSend", send.id)}


def messaging_ops(Op, only, ALL, STAFF):
    HQ_MESSAGERS = ("hq_operator", "hq_admin")
    return [
        Op("myMessageConsents", "{ myMessageConsents { topic granted } }", only("member")),
        Op("myMessages", "{ myMessages { edges { node { id } } } }", only("member")),
        Op("messageTemplates", "{ messageTemplates { edges { node { id } } } }", only(*HQ_MESSAGERS)),
        Op("messages", "{ messages(filter: {status: SENT}) { edges { node { id } } } }", only(*HQ_MESSAGERS)),
        Op(
            "messageSend",
            "query($id: ID!) { messageSend(id: $id) { effect { sent orders } } }",
            only(*HQ_MESSAGERS),
            _send,
        ),
        Op(
            "setMessageConsent",
            "mutation { setMessageConsent(input: {topic: PROMOTIONS, granted: true}) { errors { code } } }",
            only("member"),
            payload="setMessageConsent",
        ),
        Op(
            "createMessageTemplate",
            'mutation { createMessageTemplate(input: {key: "new", topic: PROMOTIONS, title: "t", body: "Hi {n}",'
            ' variables: ["n"]}) { errors { code } } }',
            only(*HQ_MESSAGERS),
            payload="createMessageTemplate",
        ),
        Op(
            "updateMessageTemplate",
            'mutation($t: ID!) { updateMessageTemplate(input: {id: $t, title: "t2", body: "Yo {name}",'
            ' variables: ["name"]}) { errors { code } } }',
            only(*HQ_MESSAGERS),
            _template,
            payload="updateMessageTemplate",
        ),
        Op(
            "sendMessage",
            "mutation($idempotencyKey: String!, $t: ID!) { sendMessage(input: {idempotencyKey: $idempotencyKey,"
            ' templateId: $t, segment: "VIP", variables: [{name: "name", value: "v"}]}) { errors { code } } }',
            only(*HQ_MESSAGERS),
            _template,
            payload="sendMessage",
        ),
    ]
