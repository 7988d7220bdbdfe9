"""Consent recorded at registration and the published documents: COMPLIANCE A1, A2;
API.md "Agreements and consent"."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from passport.agreements.models import Consent
from passport_testing import AGREEMENT_VERSIONS, STRONG_PASSWORD, bearer, new_phone, register_account


def published_body(kind: str, version: str) -> str:
    # What passport_testing.publish_agreements published.
    return f"# {kind}\n\nTest text of {kind} {version}.\n"


def test_registration_records_one_consent_per_required_document(client, rt):
    done = register_account(client, rt)
    consents = client.get("/api/v1/me/consents", headers=bearer(done["session"]["token"]))
    assert consents.status_code == 200
    ledger = consents.json()
    assert sorted(c["kind"] for c in ledger) == sorted(AGREEMENT_VERSIONS)
    for entry in ledger:
        assert entry["version"] == AGREEMENT_VERSIONS[entry["kind"]]
        expected = hashlib.sha256(published_body(entry["kind"], entry["version"]).encode()).hexdigest()
        assert entry["digest"] == expected
        assert entry["accepted_at"] == done["account"]["created_at"]
        assert entry["ip"] == "testclient"
        assert entry["channel"] == "api"


def test_consent_rows_name_the_account_and_the_user_agent(client, rt):
    client.headers["User-Agent"] = "passport-tests/1.0"
    done = register_account(client, rt)
    with rt.db.read() as db:
        rows = db.scalars(select(Consent).where(Consent.account_id == done["account"]["id"])).all()
    assert len(rows) == 2
    assert {(r.kind, r.version) for r in rows} == set(AGREEMENT_VERSIONS.items())
    assert all(r.user_agent == "passport-tests/1.0" for r in rows)


def test_each_account_sees_only_its_own_consents(client, rt):
    first = register_account(client, rt)
    second = register_account(client, rt)
    with rt.db.read() as db:
        owners = set(db.scalars(select(Consent.account_id).where(
            Consent.account_id.in_([first["account"]["id"], second["account"]["id"]]))))
    assert owners == {first["account"]["id"], second["account"]["id"]}
    ledger = client.get("/api/v1/me/consents", headers=bearer(second["session"]["token"])).json()
    assert len(ledger) == 2


def test_consents_need_authentication(client):
    answer = client.get("/api/v1/me/consents")
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"


def test_failed_registration_records_no_consent(client, rt):
    with rt.db.read() as db:
        before = len(db.scalars(select(Consent.id)).all())
    answer = client.post("/api/v1/accounts", json={
        "phone": new_phone(), "code": "000000", "password": STRONG_PASSWORD, "nickname": "x",
        "agreements": AGREEMENT_VERSIONS})
    assert answer.status_code == 422
    with rt.db.read() as db:
        assert len(db.scalars(select(Consent.id)).all()) == before


def test_current_agreements_are_listed(client):
    answer = client.get("/api/v1/agreements")
    assert answer.status_code == 200
    listed = {a["kind"]: a for a in answer.json()}
    assert set(listed) >= set(AGREEMENT_VERSIONS)
    for kind, version in AGREEMENT_VERSIONS.items():
        entry = listed[kind]
        assert entry["version"] == version
        assert entry["title"]
        assert entry["effective_at"].endswith("Z")
        assert entry["digest"] == hashlib.sha256(published_body(kind, version).encode()).hexdigest()
        assert "body" not in entry


def test_a_published_version_is_served_with_its_body(client):
    for kind, version in AGREEMENT_VERSIONS.items():
        answer = client.get(f"/api/v1/agreements/{kind}/{version}")
        assert answer.status_code == 200
        document = answer.json()
        assert document["kind"] == kind and document["version"] == version
        assert document["body"] == published_body(kind, version)
        assert document["digest"] == hashlib.sha256(document["body"].encode()).hexdigest()


def test_the_current_version_is_served_by_kind(client):
    for kind, version in AGREEMENT_VERSIONS.items():
        answer = client.get(f"/api/v1/agreements/{kind}")
        assert answer.status_code == 200
        assert answer.json()["version"] == version
        assert answer.json()["body"] == published_body(kind, version)


def test_unknown_documents_are_not_found(client):
    for path in ("/api/v1/agreements/no-such-kind", "/api/v1/agreements/no-such-kind/1.0",
                 "/api/v1/agreements/user-agreement/9.9"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "not_found"
        assert answer.headers["content-type"].startswith("application/problem+json")
