"""Optional purposes (COMPLIANCE A4) and the auditors' export of the consent ledger (A2)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from passport.agreements import service
from passport.agreements.models import PurposeConsent
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.cli import app as cli_app
from passport.web.http import ADMIN_COOKIE
from passport_testing import bearer, make_staff, register_account


@pytest.fixture(scope="module")
def auditor(rt):
    return make_staff(rt, "auditor")


def test_marketing_is_off_until_granted_and_withdrawn_in_one_call(client, rt):
    done = register_account(client, rt)
    token, account_id = done["session"]["token"], done["account"]["id"]
    listed = client.get("/api/v1/me/purposes", headers=bearer(token)).json()
    assert listed == [{"purpose": "marketing", "granted": False, "changed_at": None}]

    granted = client.put("/api/v1/me/purposes/marketing", json={"granted": True}, headers=bearer(token))
    assert granted.status_code == 200 and granted.json()["granted"] is True
    assert granted.json()["changed_at"].endswith("Z")
    with rt.db.read() as db:
        assert service.purpose_granted(db, account_id, "marketing") is True

    withdrawn = client.put("/api/v1/me/purposes/marketing", json={"granted": False}, headers=bearer(token))
    assert withdrawn.status_code == 200 and withdrawn.json()["granted"] is False
    # The same state again records nothing more: the ledger holds changes.
    client.put("/api/v1/me/purposes/marketing", json={"granted": False}, headers=bearer(token))
    with rt.db.read() as db:
        assert service.purpose_granted(db, account_id, "marketing") is False
        rows = db.scalars(select(PurposeConsent).where(PurposeConsent.account_id == account_id)
                          .order_by(PurposeConsent.id)).all()
        actions = db.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == account_id,
                                                             AuditEvent.subject_type == "purpose")
                             .order_by(AuditEvent.seq)).all()
    assert [r.granted for r in rows] == [True, False]  # both kept: append-only
    assert all(r.ip == "testclient" and r.channel == "api" for r in rows)
    assert actions == ["consent.granted", "consent.withdrawn"]
    # Withdrawing never limits the core service.
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200


def test_unknown_purposes_and_bad_bodies_are_refused(client, rt):
    token = register_account(client, rt)["session"]["token"]
    unknown = client.put("/api/v1/me/purposes/profiling", json={"granted": True}, headers=bearer(token))
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_purpose"
    assert client.put("/api/v1/me/purposes/marketing", json={"granted": "maybe"},
                      headers=bearer(token)).status_code == 422
    assert client.put("/api/v1/me/purposes/marketing", json={"granted": True}).status_code == 401


def test_set_purpose_joins_the_callers_unit_of_work(client, rt):
    account_id = register_account(client, rt)["account"]["id"]
    with pytest.raises(RuntimeError), rt.db.write() as db:
        service.set_purpose(rt, db, account_id, "marketing", True, Origin(channel="worker"))
        raise RuntimeError("the caller's work failed")
    with rt.db.read() as db:
        assert service.purpose_granted(db, account_id, "marketing") is False


def export(client, auditor, **params):
    return client.get("/api/v1/admin/consents/export", params=params, headers=auditor["headers"])


def test_auditors_export_the_ledger_by_kind_and_version(client, rt, auditor, publish):
    done = register_account(client, rt)
    publish("user-agreement", "2.0", requires_reconsent=True, immediate=True)
    client.post("/api/v1/me/consents", json={"kind": "user-agreement", "version": "2.0"},
                headers=bearer(done["session"]["token"]))
    client.put("/api/v1/me/purposes/marketing", json={"granted": True}, headers=bearer(done["session"]["token"]))

    everything = export(client, auditor)
    assert everything.status_code == 200
    assert everything.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="consents.jsonl"' in everything.headers["content-disposition"]
    rows = [json.loads(line) for line in everything.text.splitlines()]
    mine = [r for r in rows if r["account_id"] == done["account"]["id"]]
    assert {(r["record"], r["kind"], r["version"]) for r in mine} >= {("agreement", "user-agreement", "1.0"),
                                                                      ("agreement", "user-agreement", "2.0"),
                                                                      ("purpose", "marketing", None)}

    only = export(client, auditor, kind="user-agreement", version="2.0").text.splitlines()
    only = [json.loads(line) for line in only]
    assert only and {(r["kind"], r["version"]) for r in only} == {("user-agreement", "2.0")}
    purposes = [json.loads(line) for line in export(client, auditor, kind="marketing").text.splitlines()]
    assert purposes and {r["record"] for r in purposes} == {"purpose"}

    as_csv = export(client, auditor, kind="user-agreement", format="csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert table and set(table[0]) == set(service.EXPORT_COLUMNS)
    assert {r["version"] for r in table} >= {"1.0", "2.0"}

    with rt.db.read() as db:
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "consents.exported")
                           .order_by(AuditEvent.seq.desc())).first()
    assert event.actor_id == auditor["id"] and json.loads(event.details)["format"] == "csv"


def test_csv_cells_never_start_a_formula(client, rt, auditor):
    client.headers["User-Agent"] = "=HYPERLINK(\"http://evil.example\")"
    try:
        done = register_account(client, rt)
    finally:
        del client.headers["User-Agent"]
    table = list(csv.DictReader(io.StringIO(export(client, auditor, kind="privacy-policy", format="csv").text)))
    mine = [r for r in table if r["account_id"] == done["account"]["id"]]
    assert mine and mine[0]["user_agent"].startswith("'=HYPERLINK")


def test_bad_export_filters_are_refused(client, rt, auditor):
    assert export(client, auditor, kind="no-such-kind").json()["code"] == "unknown_kind"
    assert export(client, auditor, kind="user-agreement", version="9.9").json()["code"] == "unknown_version"
    assert export(client, auditor, version="1.0").json()["code"] == "kind_required"
    assert export(client, auditor, format="xml").status_code == 422
    operator = make_staff(rt, "operator")
    assert client.get("/api/v1/admin/consents/export", headers=operator["headers"]).status_code == 403


def test_the_auditor_page_links_the_exports(client, auditor):
    client.cookies.set(ADMIN_COOKIE, auditor["token"])
    page = client.get("/admin/agreements")
    client.cookies.delete(ADMIN_COOKIE)
    assert "/api/v1/admin/consents/export?format=csv" in page.text
    assert "/api/v1/admin/consents/export?format=jsonl" in page.text


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_cli_export(rt, client, monkeypatch, fmt):
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    done = register_account(client, rt)
    result = CliRunner().invoke(cli_app, ["agreements", "export", "--kind", "privacy-policy", "--version", "1.0",
                                          "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "jsonl":
        rows = [json.loads(line) for line in result.stdout.splitlines()]
    else:
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert done["account"]["id"] in {r["account_id"] for r in rows}
    assert {r["kind"] for r in rows} == {"privacy-policy"}
    bad = CliRunner().invoke(cli_app, ["agreements", "export", "--kind", "nope"])
    assert bad.exit_code == 1 and "unknown_kind" in bad.output
    assert CliRunner().invoke(cli_app, ["agreements", "export", "--format", "xml"]).exit_code != 0


def test_granting_is_rate_limited_but_withdrawing_never(client, rt):
    token = register_account(client, rt)["session"]["token"]
    for _ in range(30):
        assert client.put("/api/v1/me/purposes/marketing", json={"granted": True},
                          headers=bearer(token)).status_code == 200
    limited = client.put("/api/v1/me/purposes/marketing", json={"granted": True}, headers=bearer(token))
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert client.put("/api/v1/me/purposes/marketing", json={"granted": False},
                      headers=bearer(token)).json()["granted"] is False
