"""Publishing versions by operators (API, admin page) and by CLI; immutability and bad input."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from passport.agreements.models import AgreementVersion
from passport.audit.models import AuditEvent
from passport.cli import app as cli_app
from passport.web.http import ADMIN_COOKIE, CSRF_COOKIE
from passport_testing import make_staff


@pytest.fixture(scope="module")
def operator(rt):
    return make_staff(rt, "operator")


def body(kind: str = "community-rules", version: str = "1.0", **overrides) -> dict:
    return {"kind": kind, "version": version, "title": "社区规范", "body": "# 社区规范\n\n请友善。\n",
            "requires_reconsent": False} | overrides


def test_an_operator_publishes_a_version_that_then_cannot_change(client, rt, operator, publish):
    publish.track("community-rules", "1.0")
    answer = client.post("/api/v1/admin/agreements", json=body(), headers=operator["headers"])
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == "1.0" and answer.json()["requires_reconsent"] is False
    assert len(answer.json()["digest"]) == 64

    again = client.post("/api/v1/admin/agreements", json=body(body="# Changed\n"), headers=operator["headers"])
    assert again.status_code == 409 and again.json()["code"] == "version_exists"
    assert client.get("/api/v1/agreements/community-rules/1.0").json()["body"] == "# 社区规范\n\n请友善。\n"

    listed = client.get("/api/v1/admin/agreements", headers=operator["headers"]).json()
    assert {"community-rules", "user-agreement", "privacy-policy"} <= {v["kind"] for v in listed}
    with rt.db.read() as db:
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "agreement.published",
                                                    AuditEvent.subject_id == "community-rules/1.0")).one()
    assert event.actor_type == "staff" and event.actor_id == operator["id"]


def test_only_operators_publish(client, rt):
    auditor = make_staff(rt, "auditor")
    answer = client.post("/api/v1/admin/agreements", json=body("x-rules"), headers=auditor["headers"])
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert client.post("/api/v1/admin/agreements", json=body("x-rules")).status_code == 401
    with rt.db.read() as db:
        assert db.scalar(select(AgreementVersion.id).where(AgreementVersion.kind == "x-rules")) is None


@pytest.mark.parametrize(("overrides", "status", "code"), [
    ({"kind": "User Agreement"}, 422, "invalid_kind"),
    ({"kind": "-rules"}, 422, "invalid_kind"),
    ({"version": "1.0 final"}, 422, "invalid_version"),
    ({"version": ".1"}, 422, "invalid_version"),
    ({"body": "   \n"}, 422, "empty_body"),
    ({"body": "# Rules\n\n```\nnever closed\n"}, 422, "invalid_markdown"),
    ({"body": "# Rules\n\nbell \x07 here\n"}, 422, "validation_failed"),  # the input guard's (issue 16)
    ({"body": "x" * 200_001}, 422, "body_too_long"),
    ({"effective_at": "2030-01-01T00:00:00"}, 422, "invalid_effective_at"),
    ({"requires_reconsent": True}, 422, "effective_at_not_future"),
    ({"requires_reconsent": True, "effective_at": "2020-01-01T00:00:00Z"}, 422, "effective_at_not_future"),
    ({"unknown": 1}, 422, "validation_failed"),
])
def test_bad_publications_get_clear_errors(client, operator, overrides, status, code):
    answer = client.post("/api/v1/admin/agreements", json=body("bad-input") | overrides, headers=operator["headers"])
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code


def test_markdown_errors_name_the_line(client, operator):
    answer = client.post("/api/v1/admin/agreements", json=body("bad-input", body="# T\n\ntext\n\n~~~\ncode\n"),
                         headers=operator["headers"])
    assert answer.json()["errors"] == [{"field": "body", "code": "unclosed_code_fence", "message": "line 5"}]


def test_a_reconsent_version_in_the_past_needs_the_immediate_flag(client, operator, publish):
    publish.track("bad-input", "2.0")
    answer = client.post("/api/v1/admin/agreements", headers=operator["headers"], json=body(
        "bad-input", "2.0", requires_reconsent=True, effective_at="2020-01-01T00:00:00Z", immediate=True))
    assert answer.status_code == 201, answer.text
    assert answer.json()["effective_at"] == "2020-01-01T00:00:00Z"


def test_the_admin_page_lists_and_publishes(client, rt, operator, publish):
    publish.track("page-rules", "1.0")
    client.cookies.set(ADMIN_COOKIE, operator["token"])
    page = client.get("/admin/agreements", params={"lang": "en"})
    assert page.status_code == 200
    assert 'id="agreement-versions"' in page.text and 'data-kind="user-agreement"' in page.text
    row = re.search(r'<tr data-kind="user-agreement" data-version="1.0">(.*?)</tr>', page.text, re.S).group(1)
    assert int(re.search(r'<td class="accepted-count">(\d+)</td>', row).group(1)) >= 1  # registrations so far
    assert 'id="agreement-publish"' in page.text
    assert 'href="/admin/agreements"' in page.text  # in the admin nav
    csrf = client.cookies.get(CSRF_COOKIE)
    long_body = "# Page rules\n\n" + "Long text. " * 300  # longer than an ordinary form field
    form = {"csrf_token": csrf, "kind": "page-rules", "version": "1.0", "title": "",
            "body": long_body.replace("\n", "\r\n"), "effective_at": ""}
    done = client.post("/admin/agreements", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/agreements?done=published"
    published = client.get("/api/v1/agreements/page-rules/1.0").json()
    assert published["body"] == long_body and published["title"] == "Page rules"  # the first heading

    duplicate = client.post("/admin/agreements", data=form)
    assert duplicate.status_code == 409 and "That version is already published." in duplicate.text

    past = client.post("/admin/agreements", data=form | {"version": "2.0", "requires_reconsent": "on",
                                                          "effective_at": "2020-01-01T08:00"})
    assert past.status_code == 422 and "needs a future effective time" in past.text
    assert re.search(r'id="publish-version"[^>]*value="2.0"', past.text)  # the form keeps what was typed

    expired = client.post("/admin/agreements", data=form | {"csrf_token": "wrong", "version": "3.0"})
    assert expired.status_code == 403
    client.cookies.delete(ADMIN_COOKIE)


def test_the_admin_page_needs_a_role_that_publishes_or_exports(client, rt):
    assert client.get("/admin/agreements", follow_redirects=False).headers["location"].startswith("/admin/login")
    client.cookies.set(ADMIN_COOKIE, make_staff(rt, "reviewer")["token"])
    assert client.get("/admin/agreements").status_code == 403
    client.cookies.set(ADMIN_COOKIE, make_staff(rt, "auditor")["token"])
    page = client.get("/admin/agreements")
    assert page.status_code == 200 and 'id="consents-export"' in page.text and "agreement-publish" not in page.text
    client.cookies.delete(ADMIN_COOKIE)


def cli_env(rt, monkeypatch) -> None:
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)


def test_cli_publishes_and_refuses_bad_input(rt, client, monkeypatch, tmp_path, publish):
    cli_env(rt, monkeypatch)
    publish.track("cli-rules", "1.0")
    publish.track("cli-rules", "2.0")
    text = tmp_path / "rules.md"
    text.write_text("# CLI rules\n\nBe kind.\n", encoding="utf-8")
    run = CliRunner().invoke
    done = run(cli_app, ["agreements", "publish", "cli-rules", "1.0", str(text)])
    assert done.exit_code == 0, done.output
    assert client.get("/api/v1/agreements/cli-rules").json()["title"] == "CLI rules"

    again = run(cli_app, ["agreements", "publish", "cli-rules", "1.0", str(text)])
    assert again.exit_code == 1 and "version_exists" in again.output
    refused = run(cli_app, ["agreements", "publish", "cli-rules", "2.0", str(text), "--requires-reconsent"])
    assert refused.exit_code == 1 and "effective_at_not_future" in refused.output
    forced = run(cli_app, ["agreements", "publish", "cli-rules", "2.0", str(text), "--requires-reconsent",
                           "--immediate"])
    assert forced.exit_code == 0, forced.output
    assert client.get("/api/v1/agreements/cli-rules").json()["version"] == "2.0"
    assert run(cli_app, ["agreements", "publish", "Cli", "1.0", str(text)]).exit_code == 1
