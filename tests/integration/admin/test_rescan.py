"""``passport review rescan``: what accounts and organisations already show is checked again after a
lexicon change, in batches; hits go to the profile queue; a reviewer keeps the value or resets it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from passport.accounts.models import Account
from passport.cli import app as cli_app
from passport.moderation import operators
from passport.moderation.models import LexiconEntry
from passport.notify.models import InboxMessage
from passport.realname.models import Organization
from passport.reviews.models import Review
from passport_testing import bearer, make_staff, new_uscc, register_account

ADMIN = "/api/v1/admin"


@pytest.fixture()
def cli(rt, monkeypatch):
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    if rt.settings.redis_url:
        monkeypatch.setenv("PASSPORT_REDIS_URL", rt.settings.redis_url)
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    yield lambda *args: CliRunner().invoke(cli_app, list(args))
    with rt.db.write() as db:
        db.execute(delete(LexiconEntry))
    operators.forget(rt)


def set_shown(rt, account_id: str, **values) -> None:
    with rt.db.write() as db:
        account = db.get(Account, account_id)
        for name, value in values.items():
            setattr(account, name, value)
    rt.sessions_cache.drop(lambda row: True)


def items(rt, subject_id: str, subject_type: str) -> list[Review]:
    with rt.db.read() as db:
        return list(db.scalars(select(Review).where(Review.subject_id == subject_id,
                                                    Review.subject_type == subject_type,
                                                    Review.status == "pending")).all())


def test_a_new_term_finds_old_nicknames_and_a_rejection_resets_them(client, rt, cli):
    reviewer = make_staff(rt, "reviewer")
    offender, innocent = register_account(client, rt), register_account(client, rt)
    set_shown(rt, offender["account"]["id"], nickname="专业刷粉丝", bio="代 刷 粉 絲找我")
    set_shown(rt, innocent["account"]["id"], nickname="爱刷牙的小明")
    assert client.post(f"{ADMIN}/moderation/lexicon", json={"term": "刷粉丝", "category": "illegal_services",
                                                             "verdict": "block"},
                       headers=reviewer["headers"]).status_code == 201
    ran = cli("review", "rescan", "--field", "nickname", "--field", "bio", "--batch", "2")
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output.strip().splitlines()[-1])
    assert report["nickname"]["checked"] >= 2 and report["nickname"]["block"] >= 1
    assert report["bio"]["queued"] >= 1
    [nickname_item] = items(rt, offender["account"]["id"], "account.nickname")
    assert items(rt, innocent["account"]["id"], "account.nickname") == []
    payload = json.loads(nickname_item.payload)
    assert payload["rescan"] is True and payload["value"] == "专业刷粉丝" and payload["marks"]
    # Run again: nothing queued twice.
    again = json.loads(cli("review", "rescan", "--field", "nickname").output.strip().splitlines()[-1])
    assert again["nickname"]["queued"] == 0
    assert client.post(f"{ADMIN}/reviews/{nickname_item.id}/claim", headers=reviewer["headers"]).status_code == 200
    rejected = client.post(f"{ADMIN}/reviews/{nickname_item.id}", json={"decision": "reject", "reason": "刷量广告"},
                           headers=reviewer["headers"])
    assert rejected.status_code == 200, rejected.text
    shown = client.get("/api/v1/me", headers=bearer(offender["session"]["token"])).json()
    assert shown["nickname"].startswith("用户")
    with rt.db.read() as db:
        told = db.scalars(select(InboxMessage.params).where(InboxMessage.account_id == offender["account"]["id"],
                                                            InboxMessage.template == "profile_reset")).all()
    assert [json.loads(p)["reason"] for p in told] == ["刷量广告"]
    # The bio item approved: kept.
    [bio_item] = items(rt, offender["account"]["id"], "account.bio")
    client.post(f"{ADMIN}/reviews/{bio_item.id}/claim", headers=reviewer["headers"])
    assert client.post(f"{ADMIN}/reviews/{bio_item.id}", json={"decision": "approve"},
                       headers=reviewer["headers"]).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(offender["session"]["token"])).json()["bio"] == "代 刷 粉 絲找我"


def test_a_value_changed_since_the_rescan_is_left_alone(client, rt, cli):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    set_shown(rt, done["account"]["id"], nickname="赌神阿飞")
    cli("review", "rescan", "--field", "nickname")
    [item] = items(rt, done["account"]["id"], "account.nickname")
    changed = client.patch("/api/v1/me", json={"nickname": "阿飞"}, headers=bearer(done["session"]["token"]))
    assert changed.status_code == 200
    client.post(f"{ADMIN}/reviews/{item.id}/claim", headers=reviewer["headers"])
    assert client.post(f"{ADMIN}/reviews/{item.id}", json={"decision": "reject", "reason": "赌博"},
                       headers=reviewer["headers"]).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(done["session"]["token"])).json()["nickname"] == "阿飞"


def test_organisation_names_are_rescanned(client, rt, cli):
    done = register_account(client, rt)
    now = datetime.now(UTC)
    org_id = "rescan-" + done["account"]["id"][:10]
    code = new_uscc()
    with rt.db.write() as db:
        db.add(Organization(id=org_id, name="中華人民共和國國務院辦公廳", uscc=code, uscc_live=code, status="verified",
                            created_by=done["account"]["id"], created_at=now, decided_at=now))
    ran = cli("review", "rescan", "--field", "organization_name")
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output.strip().splitlines()[-1])["organization_name"]["queued"] >= 1
    [item] = items(rt, org_id, "organization.name")
    assert json.loads(item.payload)["field"] == "organization_name" and item.queue == "profile"


def test_a_bad_field_is_refused(cli):
    ran = cli("review", "rescan", "--field", "phone")
    assert ran.exit_code != 0 and "phone" in ran.output


def test_review_check_uses_the_terms_added_at_runtime(client, rt, cli):
    assert cli("review", "check", "专业代刷好评", "--field", "bio").exit_code == 0
    operator = make_staff(rt, "operator")
    assert client.post(f"{ADMIN}/moderation/lexicon", json={"term": "代刷好评", "category": "illegal_services",
                                                             "verdict": "block"},
                       headers=operator["headers"]).status_code == 201
    ran = cli("review", "check", "专业代 刷好評", "--field", "bio")
    assert ran.exit_code == 2, ran.output
    assert json.loads(ran.output.strip().splitlines()[-1])["hits"][0]["rule"] == "operator:代刷好评"
