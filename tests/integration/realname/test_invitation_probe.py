"""Issue 15, "phone probing through an organisation invitation": what the inviter can read afterwards
(the 202 answer and its own activity, which the export shows alike) is the same whether or not the
number has an account."""

from __future__ import annotations

from passport_testing import bearer, new_phone, register_account

from .conftest import auth, verified_person
from .test_organizations import ORGS, apply


def invite_and_read(client, owner, url: str, phone: str, nickname: str) -> tuple[dict, list[dict], int]:
    answer = client.post(url, json={"phone": phone}, headers=auth(owner))
    assert answer.status_code == 202, answer.text
    # A real change (an unchanged nickname records nothing): the event right after the invitation.
    assert client.patch("/api/v1/me", json={"nickname": nickname}, headers=auth(owner)).status_code == 200
    items = client.get("/api/v1/me/activity", params={"limit": 2}, headers=auth(owner)).json()["items"]
    invited = items[1]
    assert invited["action"] == "organization.admin_invited"
    seen = {k: v for k, v in invited.items() if k not in ("seq", "at")}
    assert seen["details"].pop("phone") == f"{phone[:3]}****{phone[-4:]}"
    # What the inviter reads is the masked number it typed, and nothing that depends on a holder —
    # not even a second record between its two events (a gap in seq would tell).
    return answer.json() | {"phone": None}, [seen], items[0]["seq"] - invited["seq"]


def test_the_inviter_reads_the_same_whether_or_not_the_number_has_an_account(client, rt, provider):
    owner = verified_person(client, rt, provider)
    holder = register_account(client, rt)
    org_id = apply(client, owner).json()["id"]
    url = f"{ORGS}/{org_id}/administrators"
    with_account = invite_and_read(client, owner, url, holder["phone"], "探测者甲")
    without_account = invite_and_read(client, owner, url, new_phone(), "探测者乙")
    assert with_account == without_account
    text = client.get("/api/v1/me/activity", params={"limit": 100}, headers=bearer(owner["session"]["token"])).text
    assert holder["account"]["id"] not in text
    # The invitee still got the invitation.
    assert [i["id"] for i in client.get("/api/v1/me/organization-invitations", headers=auth(holder)).json()] == \
        [org_id]
