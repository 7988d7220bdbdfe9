"""Organisation names through the review engine (issue 17, COMPLIANCE I1): the normalised check closes
the traditional-script and spacing bypass of the old substring list, a refused name is 422
``account_info_rejected`` naming the field, and a name under review is not published."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from passport.audit.models import AuditEvent
from passport.realname.models import Organization
from passport_testing import make_staff, register_account

from .conftest import auth, claim_and_open, verified_person
from .test_organizations import ADMIN, ORGS, apply, review_of, uploads


@pytest.mark.parametrize("name", ["中華人民共和國國務院", "国 务 院", "国\u3000务\u3000院", "国务院办公厅",
                                  "ＣＣＴＶ官方认证", "中国石油天然气集团有限公司", "杭州市公安局"])
def test_evasions_of_state_and_organ_names_still_get_strict_review(client, rt, provider, name):
    person = verified_person(client, rt, provider)
    answer = apply(client, person, name=name)
    assert answer.status_code == 202, answer.text
    assert answer.json()["strict_review"] is True
    item = review_of(client, rt, make_staff(rt, "reviewer"), answer.json()["id"])
    payload = item["payload"]
    assert payload["strict_review"] is True and payload["hits"] and payload["marks"]
    assert {hit["category"] for hit in payload["hits"]} & {"impersonation", "strict_review"}
    # The marks point into the name as it was typed (for the reviewer's highlighting).
    assert all(0 <= start < end <= len(name) for start, end, _ in payload["marks"])


def test_a_zero_width_character_is_refused_outright(client, rt, provider):
    person = verified_person(client, rt, provider)
    answer = apply(client, person, name="国\u200b务院办公厅")
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_organization_name"


@pytest.mark.parametrize("name", ["杭州云栖科技有限公司", "公安题材影视有限公司", "微笑信使文化传媒有限公司"])
def test_ordinary_names_are_not_strict(client, rt, provider, name):
    person = verified_person(client, rt, provider)
    answer = apply(client, person, name=name)
    assert answer.status_code == 202, answer.text
    assert answer.json()["strict_review"] is False


def test_a_blocked_name_is_refused_naming_the_field_and_nothing_is_kept(client, rt, provider):
    person = verified_person(client, rt, provider)
    before = uploads(rt)
    with rt.db.read() as db:
        count = db.scalar(select(func.count()).select_from(Organization))
    answer = apply(client, person, name="北京赌 博科技有限公司")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "account_info_rejected"
    assert [(e["field"], e["code"], e["category"]) for e in body["errors"]] == [
        ("name", "account_info_rejected", "gambling")]
    assert "北京" not in answer.text  # the category, never the name or the lexicon's words
    assert uploads(rt) == before
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(Organization)) == count
        refused = db.scalars(select(AuditEvent).where(AuditEvent.actor_id == person["account"]["id"],
                                                      AuditEvent.action == "organization.apply")
                              .order_by(AuditEvent.seq)).all()
    assert refused[-1].result == "denied" and json.loads(refused[-1].details)["categories"] == ["gambling"]
    english = apply(client, person, name="北京赌博科技有限公司", headers=auth(person) | {"Accept-Language": "en"})
    assert english.json()["errors"][0]["message"] == "Gambling"


def test_a_pending_organisation_is_public_only_after_approval(client, rt, provider):
    person = verified_person(client, rt, provider)
    stranger = register_account(client, rt)
    created = apply(client, person, name="杭州云栖科技有限公司").json()
    org_id = created["id"]
    assert client.get(f"{ORGS}/{org_id}").status_code == 404
    client.cookies.clear()
    assert client.get(f"/organizations/{org_id}").status_code == 404  # a visitor
    client.cookies.set("passport_session", stranger["session"]["token"])
    stranger_page = client.get(f"/organizations/{org_id}")
    assert stranger_page.status_code == 404 and "杭州云栖科技有限公司" not in stranger_page.text
    client.cookies.set("passport_session", person["session"]["token"])
    own = client.get(f"/organizations/{org_id}")  # its administrator sees it, to withdraw or invite
    assert own.status_code == 200 and "杭州云栖科技有限公司" in own.text
    reviewer = make_staff(rt, "reviewer")
    item = review_of(client, rt, reviewer, org_id)
    claim_and_open(client, reviewer, item["id"])
    assert client.post(f"{ADMIN}/reviews/{item['id']}", json={"decision": "approve"},
                       headers=reviewer["headers"]).status_code == 200
    client.cookies.clear()
    assert client.get(f"{ORGS}/{org_id}").json()["name"] == "杭州云栖科技有限公司"
    assert "杭州云栖科技有限公司" in client.get(f"/organizations/{org_id}").text
