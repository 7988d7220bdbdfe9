"""Retention sweeps (issue 18, COMPLIANCE D2) on both databases: consent rows of finalised accounts lose
IP and user agent after the network-log period; terminated accounts are anonymised after their retention
unless a superadmin's legal hold keeps them; closed reports lose their evidence images."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from passport.accounts.models import Account
from passport.admin.models import AccountAction
from passport.agreements.models import Consent
from passport.audit.models import AuditEvent
from passport.cli import app as cli_app
from passport.realname import documents
from passport.realname.models import Document
from passport.reports import retention
from passport.reports.models import APPEAL_TEXT, DESCRIPTION, Appeal, Report
from passport.settings import Settings
from passport_testing import bearer, make_staff, register_account
from reports_testing import ADMIN, PNG, case_of, claim, decide, file_report


@pytest.fixture()
def cli(rt, monkeypatch):
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    if rt.settings.redis_url:
        monkeypatch.setenv("PASSPORT_REDIS_URL", rt.settings.redis_url)
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    return lambda *args: CliRunner().invoke(cli_app, list(args))


def terminate(client, reviewer, account_id: str) -> None:
    done = client.post(f"{ADMIN}/accounts/{account_id}/actions", json={"action": "terminate", "reason": "严重违规"},
                       headers=reviewer["headers"])
    assert done.status_code == 201, done.text


def backdate(rt, account_ids: list[str], days: int = 181) -> None:
    then = rt.clock.now() - timedelta(days=days)
    with rt.db.write() as db:
        db.execute(update(AccountAction).where(AccountAction.account_id.in_(account_ids)).values(created_at=then))
        db.execute(update(Consent).where(Consent.account_id.in_(account_ids)).values(accepted_at=then))


def consents(rt, account_id: str) -> list[tuple]:
    with rt.db.read() as db:
        return db.execute(select(Consent.ip, Consent.user_agent).where(Consent.account_id == account_id)).all()


def test_retention_sweeps_and_the_legal_hold(client, rt, cli, reviewers):
    reviewer, _ = reviewers
    boss = make_staff(rt, "superadmin")
    gone, held, live = (register_account(client, rt) for _ in range(3))
    for user in (gone, held):
        terminate(client, reviewer, user["account"]["id"])
    assert all(ip or ua for ip, ua in consents(rt, gone["account"]["id"]))  # recorded at registration

    hold_url = f"{ADMIN}/accounts/{held['account']['id']}/legal-hold"
    assert client.post(hold_url, json={"reason": "公安机关调取证据"}, headers=reviewer["headers"]).status_code == 403
    short = client.post(hold_url, json={"reason": "查"}, headers=boss["headers"])
    assert short.status_code == 422 and short.json()["code"] == "reason_required"
    assert client.post(hold_url, json={"reason": "公安机关调取证据"}, headers=boss["headers"]).status_code == 201
    again = client.post(hold_url, json={"reason": "公安机关调取证据"}, headers=boss["headers"])
    assert again.status_code == 409 and again.json()["code"] == "legal_hold_exists"

    # A closed report with an evidence image.
    filed = file_report(client, live["session"]["token"], gone["account"]["id"],
                        files=[("evidence", ("a.png", PNG, "image/png"))], category="infringement",
                        right_holder="权利人 张三")
    case = case_of(client, reviewer, gone["account"]["id"])
    claim(client, reviewer, case["id"])
    assert decide(client, reviewer, case["id"], outcome="no_violation", reason="已终止").status_code == 200
    with rt.db.read() as db:
        [document_id] = json.loads(db.get(Report, filed.json()["report"]["id"]).evidence)
        stored = documents.uploads_dir(rt) / db.get(Document, document_id).stored_name
    assert stored.exists()

    # Nothing is due yet.
    nothing = retention.run(rt)
    assert nothing["terminated_anonymised"] == 0 and nothing["evidence_deleted"] == 0
    backdate(rt, [gone["account"]["id"], held["account"]["id"], live["account"]["id"]])
    with rt.db.write() as db:
        db.execute(update(Report).where(Report.id == filed.json()["report"]["id"])
                   .values(closed_at=rt.clock.now() - timedelta(days=181)))

    answer = cli("retention", "run")
    assert answer.exit_code == 0, answer.output
    counts = json.loads(answer.output.strip().splitlines()[-1])
    assert counts["terminated_anonymised"] >= 1 and counts["evidence_deleted"] >= 1
    assert counts["consent_network_data"] >= 2

    assert all(ip is None and ua is None for ip, ua in consents(rt, gone["account"]["id"]))
    assert all(ip is None and ua is None for ip, ua in consents(rt, held["account"]["id"]))
    assert all(ip or ua for ip, ua in consents(rt, live["account"]["id"]))  # a live account keeps its own
    with rt.db.read() as db:
        anonymised, kept = db.get(Account, gone["account"]["id"]), db.get(Account, held["account"]["id"])
        assert anonymised.status == "terminated" and anonymised.nickname == "已终止用户"
        assert anonymised.phone_enc is None and anonymised.phone_bidx is None and anonymised.password_hash is None
        assert kept.phone_enc is not None and kept.nickname != "已终止用户"  # the legal hold keeps it
        report = db.get(Report, filed.json()["report"]["id"])
        assert report.evidence == "[]" and report.right_holder_enc is None
        assert db.get(Document, document_id) is None
        assert db.scalar(select(AuditEvent.seq).where(AuditEvent.action == "account.legal_hold_set",
                                                      AuditEvent.subject_id == held["account"]["id"]))
    assert not stored.exists()
    # The phone of the anonymised account is free again.
    assert register_account(client, rt, phone=gone["phone"])["account"]["id"] != gone["account"]["id"]

    released = client.request("DELETE", hold_url, json={"reason": "案件已结案"}, headers=boss["headers"])
    assert released.status_code == 200, released.text
    assert retention.run(rt)["terminated_anonymised"] == 1
    with rt.db.read() as db:
        assert db.get(Account, held["account"]["id"]).phone_enc is None


def test_the_network_log_period_is_at_least_six_months():
    with pytest.raises(ValueError, match="PASSPORT_NETWORK_LOG_DAYS"):
        Settings(network_log_days=179)
    assert Settings(network_log_days=180).network_log_days == 180


def test_a_cancelled_accounts_words_are_erased(client, rt, reviewers):
    first, second = reviewers
    reporter, subject = register_account(client, rt), register_account(client, rt)
    filed = file_report(client, reporter["session"]["token"], subject["account"]["id"], description="他骗了我五百元",
                        files=[("evidence", ("a.png", PNG, "image/png"))])
    case = case_of(client, first, subject["account"]["id"])
    claim(client, first, case["id"])
    assert decide(client, first, case["id"], outcome="violation", actions=["warn"], reason="诈骗").status_code == 200
    action_id = client.get("/api/v1/me/actions", headers=bearer(subject["session"]["token"])).json()[0]["id"]
    appealed = client.post("/api/v1/me/appeals", json={"action_id": action_id, "text": "那是借款"},
                           headers=bearer(subject["session"]["token"]))
    review_id = next(i["id"] for i in client.get(f"{ADMIN}/appeals", headers=second["headers"]).json()["items"]
                     if i["account_id"] == subject["account"]["id"])
    claim(client, second, review_id)
    client.post(f"{ADMIN}/appeals/{review_id}/decision", json={"outcome": "upheld", "reason": "证据充分"},
                headers=second["headers"])
    with rt.db.write() as db:  # both accounts' cancellations became final
        db.execute(update(Account).where(Account.id.in_([reporter["account"]["id"], subject["account"]["id"]]))
                   .values(status="cancelled"))
    assert retention.run(rt)["cancelled_texts_erased"] >= 2
    with rt.db.read() as db:
        report = db.get(Report, filed.json()["report"]["id"])
        appeal = db.get(Appeal, appealed.json()["id"])
        assert rt.keys.cipher.decrypt(report.description_enc, DESCRIPTION, report.id) == "—"
        assert rt.keys.cipher.decrypt(appeal.text_enc, APPEAL_TEXT, appeal.id) == "—"
        assert report.evidence == "[]" and report.outcome == "violation" and appeal.status == "upheld"
    assert retention.run(rt)["cancelled_texts_erased"] == 0  # once
