"""Auditors search, export and verify the audit log (API.md "Admin", COMPLIANCE L1); reading the
log is itself audited; nothing can change or delete a record."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from passport.audit import service as audit
from passport.audit.models import AuditEvent
from passport.cli import app as cli_app
from passport.clock import rfc3339
from passport.web.http import ADMIN_COOKIE
from passport_testing import csrf, make_staff, register_account

_events = AuditEvent.__table__


@pytest.fixture(scope="module")
def auditor(rt):
    return make_staff(rt, "auditor")


def last_event(rt, action: str) -> dict:
    with rt.db.read() as db:
        row = db.execute(select(_events).where(_events.c.action == action).order_by(_events.c.seq.desc())
                         .limit(1)).one()
    return audit.as_dict(row)


def test_search_filters_pages_newest_first_and_is_audited(client, rt, auditor):
    done = register_account(client, rt)
    account = done["account"]["id"]
    answer = client.get("/api/v1/admin/audit", params={"subject": account, "limit": 1}, headers=auditor["headers"])
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert len(page["items"]) == 1 and page["next_before"] == page["items"][0]["seq"]
    older = client.get("/api/v1/admin/audit", params={"subject": account, "before": page["next_before"]},
                       headers=auditor["headers"]).json()
    seqs = [page["items"][0]["seq"]] + [item["seq"] for item in older["items"]]
    assert seqs == sorted(seqs, reverse=True)
    assert all(item["subject_id"] == account for item in older["items"])
    assert "account.registered" in {item["action"] for item in page["items"] + older["items"]}

    searched = last_event(rt, "audit.searched")
    assert (searched["actor_type"], searched["actor_id"]) == ("staff", auditor["id"])
    assert searched["details"]["subject"] == account and searched["details"]["before"] == page["next_before"]

    by_action = client.get("/api/v1/admin/audit", params={"action": "audit.searched", "actor": auditor["id"]},
                           headers=auditor["headers"]).json()["items"]
    assert by_action and all(i["action"] == "audit.searched" and i["actor_id"] == auditor["id"] for i in by_action)
    now = rt.clock.now()
    later = client.get("/api/v1/admin/audit", params={"since": rfc3339(now + timedelta(hours=1))},
                       headers=auditor["headers"]).json()
    assert later == {"items": [], "next_before": None}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_streams_the_period_in_either_format(client, rt, auditor, fmt):
    make_staff(rt, "operator")
    since = rt.clock.now() - timedelta(minutes=5)
    answer = client.get("/api/v1/admin/audit/export", params={"since": rfc3339(since), "format": fmt},
                        headers=auditor["headers"])
    assert answer.status_code == 200, answer.text
    if fmt == "jsonl":
        assert answer.headers["content-type"].startswith("application/x-ndjson")
        records = [json.loads(line) for line in answer.text.split("\n") if line]
    else:
        assert answer.headers["content-type"].startswith("text/csv")
        records = list(csv.DictReader(io.StringIO(answer.text)))
        assert list(records[0]) == list(audit.EXPORT_COLUMNS)
        for record in records:
            record["seq"] = int(record["seq"])
            record["details"] = json.loads(record["details"])
    assert records and [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    assert {"staff.created", "audit.exported"} <= {r["action"] for r in records}
    exported = last_event(rt, "audit.exported")
    assert exported["actor_id"] == auditor["id"]
    assert exported["details"]["format"] == fmt and exported["details"]["since"] == rfc3339(since)


def test_only_auditors_read_and_auditors_or_superadmins_verify(client, rt, auditor):
    for role in ("reviewer", "operator", "superadmin"):
        headers = make_staff(rt, role)["headers"]
        assert client.get("/api/v1/admin/audit", headers=headers).status_code == 403
        assert client.get("/api/v1/admin/audit/export", headers=headers).status_code == 403
    assert client.get("/api/v1/admin/audit").status_code == 401
    superadmin = make_staff(rt, "superadmin")["headers"]
    assert client.post("/api/v1/admin/audit/verify", headers=superadmin).json()["ok"] is True
    assert client.post("/api/v1/admin/audit/verify", headers=make_staff(rt, "reviewer")["headers"]).status_code == 403
    body = client.post("/api/v1/admin/audit/verify", headers=auditor["headers"]).json()
    assert body["ok"] is True and body["first_bad"] is None and body["checked"] > 0
    verified = last_event(rt, "audit.verified")
    assert (verified["actor_id"], verified["result"]) == (auditor["id"], "ok")


def test_no_endpoint_changes_or_removes_a_record(client, auditor):
    seq = client.get("/api/v1/admin/audit", params={"limit": 1}, headers=auditor["headers"]).json()["items"][0]["seq"]
    for method in ("PUT", "PATCH", "DELETE"):
        for path in ("/api/v1/admin/audit", f"/api/v1/admin/audit/{seq}"):
            assert client.request(method, path, headers=auditor["headers"]).status_code in (404, 405)


def test_bad_export_format_and_times_are_refused(client, auditor):
    assert client.get("/api/v1/admin/audit/export", params={"format": "xml"},
                      headers=auditor["headers"]).status_code == 422
    assert client.get("/api/v1/admin/audit", params={"since": "yesterday"},
                      headers=auditor["headers"]).status_code == 422


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_cli_export_writes_the_period_to_stdout(rt, monkeypatch, fmt):
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)  # keep the suite's
    make_staff(rt, "operator")
    since = rfc3339(rt.clock.now() - timedelta(minutes=5))
    result = CliRunner().invoke(cli_app, ["audit", "export", "--since", since, "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "jsonl":
        records = [json.loads(line) for line in result.stdout.split("\n") if line]
    else:
        records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert records and "audit.exported" in {r["action"] for r in records}
    assert CliRunner().invoke(cli_app, ["audit", "export", "--format", "xml"]).exit_code != 0
    assert CliRunner().invoke(cli_app, ["audit", "export", "--since", "soon"]).exit_code != 0


def test_audit_page_needs_a_signed_in_auditor(client, rt, auditor):
    page = client.get("/admin/audit", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/admin/login")
    client.cookies.set(ADMIN_COOKIE, make_staff(rt, "reviewer")["token"])
    assert client.get("/admin/audit").status_code == 403

    client.cookies.set(ADMIN_COOKIE, auditor["token"])
    page = client.get("/admin/audit", params={"action": "staff.created", "lang": "zh-CN"})
    assert page.status_code == 200
    assert 'id="audit-results"' in page.text and "staff.created" in page.text
    assert "/api/v1/admin/audit/export?format=csv" in page.text
    verified = client.post("/admin/audit/verify", data={"csrf_token": csrf(client)})
    assert verified.status_code == 200
    assert 'id="audit-verify-result" class="alert alert-ok"' in verified.text
    assert client.post("/admin/audit/verify", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/admin/audit", params={"since": "not a time"}).status_code == 200
