"""The composition point for jobs: every domain module that registers job kinds, periodic work or a standing
schedule (services/platform/jobs.py: `@job`, `@daily`, `@periodic`), imported so its decorators have run.

services/platform/jobs.py knows no domain; whatever starts a runner or seeds the schedule imports this module first: the
app (app.py) and the operator commands (services/cli.py). A domain that registers a new job module adds it here;
tests/platform/test_job_registry.py fails when a kind the code enqueues has no handler once this module is imported.
"""

from __future__ import annotations

from types import ModuleType

from services.analytics import facts, recommendations
from services.cards import cards
from services.care import follow_ups
from services.marketing import coupons, group_buys
from services.members import browsing, points, segments
from services.messaging import sending, triggers
from services.orders import late_payments, refunds
from services.orders import lifecycle as orders

JOB_DOMAINS: tuple[ModuleType, ...] = (
    browsing,
    cards,
    coupons,
    facts,
    follow_ups,
    group_buys,
    late_payments,
    orders,
    points,
    recommendations,
    refunds,
    segments,
    sending,
    triggers,
)
