"""Accepting the same version many times at once records it once (SQLite and PostgreSQL), on a real
socket with the requests released together."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from passport.agreements import service
from passport.agreements.models import Consent
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport_testing import bearer, register_account

N = 12


def test_accepting_at_once_records_once(live_server, client, rt, publish):
    done = register_account(client, rt)
    publish("user-agreement", "2.0", requires_reconsent=True, immediate=True)
    headers = bearer(done["session"]["token"])
    barrier = threading.Barrier(N)

    def accept(_: int) -> int:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            http.get("/healthz")
            barrier.wait(timeout=30)
            return http.post("/api/v1/me/consents", json={"kind": "user-agreement", "version": "2.0"},
                             headers=headers).status_code

    with ThreadPoolExecutor(N) as pool:
        statuses = Counter(pool.map(accept, range(N)))

    assert statuses == Counter({201: 1, 200: N - 1}), statuses
    account_id = done["account"]["id"]
    with rt.db.read() as db:
        rows = db.scalar(select(func.count()).select_from(Consent).where(
            Consent.account_id == account_id, Consent.kind == "user-agreement", Consent.version == "2.0"))
        events = db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.actor_id == account_id, AuditEvent.action == "consent.given",
            AuditEvent.subject_id == "user-agreement/2.0"))
    assert rows == 1 and events == 1


def test_continued_use_from_many_requests_at_once_records_once(client, rt, publish):
    done = register_account(client, rt)
    publish("user-agreement", "1.1", in_minutes=1)
    rt.clock.advance(minutes=2)
    with rt.db.read() as db:
        versions = tuple(v for v in service.current_versions(rt, db) if v.kind == "user-agreement")
    barrier = threading.Barrier(6)

    def record(_: int) -> int:
        barrier.wait(timeout=30)
        return service.record_continued_use(rt, Origin(channel="api"), done["account"]["id"], versions)

    with ThreadPoolExecutor(6) as pool:
        recorded = list(pool.map(record, range(6)))
    assert sum(recorded) == 1
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(Consent).where(
            Consent.account_id == done["account"]["id"], Consent.version == "1.1")) == 1
