"""Changed agreements: the re-consent gate, acceptance, continued use (COMPLIANCE A1, A3; §二(三);
API.md "Agreements and consent")."""

from __future__ import annotations

from sqlalchemy import select

from passport.agreements import service
from passport.agreements.models import Consent
from passport.audit.models import AuditEvent
from passport.notify.models import InboxMessage
from passport_testing import (
    AGREEMENT_VERSIONS,
    STRONG_PASSWORD,
    bearer,
    last_code,
    new_phone,
    register_account,
    step_up,
)


def ledger(client, token: str) -> list[dict]:
    answer = client.get("/api/v1/me/consents", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_registration_naming_an_outdated_version_is_refused(client, rt, publish):
    publish("user-agreement", "1.1")
    phone = new_phone()
    assert client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"}).status_code == 202
    body = {"phone": phone, "code": last_code(rt, phone, "register"), "password": STRONG_PASSWORD,
            "nickname": "过期", "agreements": AGREEMENT_VERSIONS}
    answer = client.post("/api/v1/accounts", json=body)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "agreements_required"
    assert [e["field"] for e in problem["errors"]] == ["agreements.user-agreement"]
    assert {"kind": "user-agreement", "version": "1.1"} in problem["required"]

    register_account(client, rt, nickname="后来者", agreements=AGREEMENT_VERSIONS | {"user-agreement": "1.1"})


def test_a_future_reconsent_version_blocks_only_once_in_force_and_acceptance_unblocks(client, rt, publish):
    done = register_account(client, rt)
    token = done["session"]["token"]
    publish("user-agreement", "2.0", in_minutes=1, requires_reconsent=True)

    # Announced, not yet in force: nothing is blocked.
    assert client.get("/api/v1/sessions", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(token)).json()["pending_agreements"] == []

    rt.clock.advance(minutes=2)  # small: audit records written now carry the moved clock
    blocked = client.get("/api/v1/sessions", headers=bearer(token))
    assert blocked.status_code == 403
    assert blocked.headers["content-type"].startswith("application/problem+json")
    assert blocked.json()["code"] == "consent_required"
    assert blocked.json()["pending"] == [{"kind": "user-agreement", "version": "2.0"}]
    assert client.patch("/api/v1/me", json={"nickname": "改名"}, headers=bearer(token)).status_code == 403

    # What stays open: GET /me, the ledger, the documents.
    me = client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["pending_agreements"] == [{"kind": "user-agreement", "version": "2.0"}]
    assert [c["version"] for c in ledger(client, token) if c["kind"] == "user-agreement"] == ["1.0"]
    assert client.get("/api/v1/agreements/user-agreement").json()["version"] == "2.0"

    accepted = client.post("/api/v1/me/consents", json={"kind": "user-agreement", "version": "2.0"},
                           headers=bearer(token))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["version"] == "2.0" and accepted.json()["basis"] == "explicit"

    assert client.get("/api/v1/sessions", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(token)).json()["pending_agreements"] == []
    entries = {(c["kind"], c["version"]): c for c in ledger(client, token)}
    assert {("user-agreement", "1.0"), ("user-agreement", "2.0"), ("privacy-policy", "1.0")} == set(entries)
    text = client.get("/api/v1/agreements/user-agreement/2.0").json()["body"]
    assert entries[("user-agreement", "2.0")]["digest"] == service.digest(text)
    assert entries[("user-agreement", "2.0")]["channel"] == "api"

    again = client.post("/api/v1/me/consents", json={"kind": "user-agreement", "version": "2.0"},
                        headers=bearer(token))
    assert again.status_code == 200  # recorded once
    assert len(ledger(client, token)) == 3


def test_the_gate_leaves_open_what_a_user_needs_to_decide(client, rt, publish):
    done = register_account(client, rt)
    token = done["session"]["token"]
    publish("privacy-policy", "2.0", requires_reconsent=True, immediate=True)

    assert client.get("/api/v1/sessions", headers=bearer(token)).json()["code"] == "consent_required"
    # Withdrawing an optional purpose is never blocked (A4).
    answer = client.put("/api/v1/me/purposes/marketing", json={"granted": False}, headers=bearer(token))
    assert answer.status_code == 200
    assert client.get("/api/v1/me/purposes", headers=bearer(token)).status_code == 200
    for method, path in (("GET", "/api/v1/me/cancellation"), ("GET", "/api/v1/me/export")):
        assert client.request(method, path, headers=bearer(token)).json().get("code") != "consent_required", path
    assert client.delete("/api/v1/sessions/current", headers=bearer(token)).status_code == 204


def test_a_user_who_has_not_accepted_may_step_up_to_take_their_data(client, rt, publish):
    done = register_account(client, rt)
    rt.clock.advance(minutes=rt.settings.step_up_minutes + 1)  # the registration's step-up has lapsed
    publish("privacy-policy", "2.0", requires_reconsent=True, immediate=True)
    token = done["session"]["token"]
    assert client.get("/api/v1/me/export", headers=bearer(token)).json()["code"] == "step_up_required"
    token = step_up(client, token)
    assert client.get("/api/v1/me/export", headers=bearer(token)).json()["code"] == "reauthentication_required"
    client.cookies.set("passport_session", token)
    page = client.get("/account/export", follow_redirects=False)
    assert page.status_code == 200 and 'action="/account/export"' in page.text
    rt.clock.advance(minutes=rt.settings.step_up_minutes + 1)
    to_confirm = client.get("/account/export", follow_redirects=False)
    assert to_confirm.headers["location"] == "/account/step-up?next=/account/export"
    confirm = client.get(to_confirm.headers["location"], follow_redirects=False)
    assert confirm.status_code == 200 and 'id="form-step-up"' in confirm.text


def test_accepting_names_the_version_in_force(client, rt, publish):
    done = register_account(client, rt)
    token = done["session"]["token"]
    publish("user-agreement", "2.0", requires_reconsent=True, immediate=True)
    publish("user-agreement", "3.0", in_minutes=30, requires_reconsent=True)

    def accept(kind: str, version: str):
        return client.post("/api/v1/me/consents", json={"kind": kind, "version": version}, headers=bearer(token))

    assert accept("no-such-kind", "1.0").status_code == 404
    assert accept("user-agreement", "9.9").status_code == 404
    superseded = accept("user-agreement", "1.0")
    assert superseded.status_code == 409 and superseded.json()["code"] == "version_not_current"
    assert superseded.json()["current"] == "2.0"
    upcoming = accept("user-agreement", "3.0")
    assert upcoming.status_code == 409 and upcoming.json()["code"] == "version_not_current"
    assert accept("user-agreement", "2.0").status_code == 201
    assert client.post("/api/v1/me/consents", json={"kind": "user-agreement"},
                       headers=bearer(token)).status_code == 422
    with rt.db.read() as db:
        versions = db.scalars(select(Consent.version).where(Consent.account_id == done["account"]["id"],
                                                            Consent.kind == "user-agreement")).all()
    assert sorted(versions) == ["1.0", "2.0"]


def test_accepting_is_audited(client, rt, publish):
    done = register_account(client, rt)
    publish("user-agreement", "2.0", requires_reconsent=True, immediate=True)
    client.post("/api/v1/me/consents", json={"kind": "user-agreement", "version": "2.0"},
                headers=bearer(done["session"]["token"]))
    with rt.db.read() as db:
        event = db.scalars(select(AuditEvent).where(AuditEvent.actor_id == done["account"]["id"],
                                                    AuditEvent.action == "consent.given")
                           .order_by(AuditEvent.seq.desc())).first()
    assert event.subject_id == "user-agreement/2.0"


def test_a_changed_version_without_reconsent_counts_as_accepted_on_next_use(client, rt, publish):
    done = register_account(client, rt)
    token = done["session"]["token"]
    publish("user-agreement", "1.1", in_minutes=1)
    rt.clock.advance(minutes=2)

    assert client.get("/api/v1/sessions", headers=bearer(token)).status_code == 200  # never blocked
    entries = [c for c in ledger(client, token) if c["version"] == "1.1"]
    assert len(entries) == 1
    assert entries[0]["basis"] == "continued_use" and entries[0]["channel"] == "api"
    with rt.db.read() as db:  # told in an in-site message, with the link to the text
        notices = db.scalars(select(InboxMessage.params).where(InboxMessage.account_id == done["account"]["id"],
                                                               InboxMessage.template == "consent_terms_updated")).all()
    assert len(notices) == 1 and "/agreements/user-agreement/1.1" in notices[0]

    client.get("/api/v1/sessions", headers=bearer(token))
    service._continued.clear()  # another process, which has not settled this account yet
    client.get("/api/v1/sessions", headers=bearer(token))
    assert len([c for c in ledger(client, token) if c["version"] == "1.1"]) == 1  # once

    # Someone who registered under 1.1 accepted it explicitly; nothing more is recorded.
    later = register_account(client, rt, nickname="后来者",
                             agreements=AGREEMENT_VERSIONS | {"user-agreement": "1.1"})["session"]["token"]
    client.get("/api/v1/sessions", headers=bearer(later))
    later_entries = [c for c in ledger(client, later) if c["kind"] == "user-agreement"]
    assert [(c["version"], c["basis"]) for c in later_entries] == [("1.1", "explicit")]


def test_continued_use_is_only_for_documents_the_user_accepted_before(client, rt, publish):
    kind = "community-rules"
    publish(kind, "1.0")
    done = register_account(client, rt)
    publish(kind, "1.1", in_minutes=1)
    rt.clock.advance(minutes=2)
    client.get("/api/v1/sessions", headers=bearer(done["session"]["token"]))
    assert not [c for c in ledger(client, done["session"]["token"]) if c["kind"] == kind]


def test_nothing_is_read_from_the_ledger_when_no_reconsent_version_is_in_force(client, rt):
    done = register_account(client, rt)
    client.get("/api/v1/sessions", headers=bearer(done["session"]["token"]))  # warms the versions cache
    assert service.pending_cached(rt, done["account"]["id"]) == []
    assert service.gate_is_clear(rt, done["account"]["id"], None)


def test_a_later_minor_version_does_not_skip_the_reconsent_version_before_it(client, rt, publish):
    """Review finding 1: 2.0 asks for re-consent, the typo fix 2.1 does not; the account that accepted
    neither must still accept (the current 2.1), and nothing is recorded as continued use."""
    done = register_account(client, rt)
    token = done["session"]["token"]
    publish("user-agreement", "2.0", requires_reconsent=True, immediate=True)
    assert client.get("/api/v1/me/activity", headers=bearer(token)).status_code == 403
    rt.clock.advance(minutes=1)
    publish("user-agreement", "2.1")

    blocked = client.get("/api/v1/me/activity", headers=bearer(token))
    assert blocked.status_code == 403
    assert blocked.json()["pending"] == [{"kind": "user-agreement", "version": "2.1"}]
    assert client.get("/api/v1/me", headers=bearer(token)).json()["pending_agreements"] == [
        {"kind": "user-agreement", "version": "2.1"}]
    assert service.pending_cached(rt, done["account"]["id"]) is None  # the ledger must be read
    assert [c["version"] for c in ledger(client, token) if c["kind"] == "user-agreement"] == ["1.0"]

    accepted = client.post("/api/v1/me/consents", json={"kind": "user-agreement", "version": "2.1"},
                           headers=bearer(token))
    assert accepted.status_code == 201 and accepted.json()["basis"] == "explicit"
    assert client.get("/api/v1/me/activity", headers=bearer(token)).status_code == 200
    assert service.gate_is_clear(rt, done["account"]["id"], None)  # settled: no ledger read per request


def test_a_minor_version_after_an_accepted_reconsent_version_counts_by_continued_use(client, rt, publish):
    done = register_account(client, rt)
    token = done["session"]["token"]
    publish("user-agreement", "2.0", requires_reconsent=True, immediate=True)
    assert client.post("/api/v1/me/consents", json={"kind": "user-agreement", "version": "2.0"},
                       headers=bearer(token)).status_code == 201
    rt.clock.advance(minutes=1)
    publish("user-agreement", "2.1")

    assert client.get("/api/v1/me/activity", headers=bearer(token)).status_code == 200
    entries = [(c["version"], c["basis"]) for c in ledger(client, token) if c["kind"] == "user-agreement"]
    assert ("2.1", "continued_use") in entries and ("2.0", "explicit") in entries


def test_continued_use_is_not_recorded_on_refused_or_open_requests(client, rt, publish):
    """Review finding 7: a request the gate refuses, reading the ledger, cancelling or exporting is not
    use of the service."""
    done = register_account(client, rt)
    token = done["session"]["token"]
    publish("user-agreement", "1.1", in_minutes=1)
    publish("privacy-policy", "2.0", in_minutes=1, requires_reconsent=True)
    rt.clock.advance(minutes=2)

    def continued() -> list[str]:
        with rt.db.read() as db:
            return list(db.scalars(select(Consent.version).where(Consent.account_id == done["account"]["id"],
                                                                 Consent.basis == "continued_use")))

    assert client.get("/api/v1/me/activity", headers=bearer(token)).status_code == 403
    for method, path in (("GET", "/api/v1/me/consents"), ("GET", "/api/v1/me"), ("GET", "/api/v1/me/cancellation"),
                         ("POST", "/api/v1/me/cancellation"), ("GET", "/api/v1/me/export")):
        client.request(method, path, headers=bearer(token), json={})
    assert continued() == []

    assert client.post("/api/v1/me/consents", json={"kind": "privacy-policy", "version": "2.0"},
                       headers=bearer(token)).status_code == 201
    client.get("/api/v1/me/consents", headers=bearer(token))
    assert continued() == []  # reading the ledger is still not use
    assert client.get("/api/v1/me/activity", headers=bearer(token)).status_code == 200
    assert continued() == ["1.1"]
