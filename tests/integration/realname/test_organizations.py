"""Organisation accounts: application by a verified person (multipart with a licence), USCC errors,
licence checks by content and size, the review queue deciding, the public page, administrators."""

from __future__ import annotations

from sqlalchemy import func, select

from passport import errors
from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.notify.models import InboxMessage
from passport.realname import documents, organizations, service
from passport.realname.models import Document, Organization, OrganizationAdmin
from passport.reviews.models import Review
from passport_testing import make_staff, new_phone, new_uscc, register_account

from .conftest import EXECUTABLE, JPEG, PDF, PNG, auth, claim_and_open, verified_person

ORGS = "/api/v1/organizations"
ADMIN = "/api/v1/admin"


def apply(client, person, *, name: str = "杭州云栖科技有限公司", uscc: str | None = None, license_bytes: bytes = PNG,
          filename: str = "licence.png", mime: str = "image/png", headers: dict | None = None):
    return client.post(ORGS, data={"name": name, "uscc": uscc or new_uscc(), "legal_representative": "李四",
                                   "contact_phone": "13800138000"},
                       files={"license": (filename, license_bytes, mime)}, headers=headers or auth(person))


def uploads(rt) -> set[str]:
    return {p.name for p in documents.uploads_dir(rt).iterdir()}


def review_of(client, rt, reviewer, org_id: str) -> dict:
    with rt.db.read() as db:
        review_id = db.get(Organization, org_id).review_id
    item = client.get(f"{ADMIN}/reviews/{review_id}", headers=reviewer["headers"])
    assert item.status_code == 200, item.text
    return item.json()


def test_a_verified_person_applies_and_a_reviewer_approves(client, rt, provider):
    person = verified_person(client, rt, provider)
    code = new_uscc()
    answer = apply(client, person, uscc=code.lower())
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert created == {"id": created["id"], "status": "pending_review", "strict_review": False}
    # Under review, the name is not published (issue 17): the same 404 as an unknown id.
    hidden = client.get(f"{ORGS}/{created['id']}")
    assert hidden.status_code == 404 and hidden.json() == client.get(f"{ORGS}/{'0' * 32}").json()

    reviewer = make_staff(rt, "reviewer")
    item = review_of(client, rt, reviewer, created["id"])
    assert item["payload"]["legal_representative"] == "李*" and item["payload"]["contact_phone"] == "138****8000"
    assert client.post(f"{ADMIN}/reviews/{item['id']}/claim", headers=reviewer["headers"]).status_code == 200
    document = client.get(f"{ADMIN}/reviews/{item['id']}/document", headers=reviewer["headers"])
    assert document.status_code == 200 and document.content == PNG
    assert document.headers["content-type"] == "image/png" and document.headers["cache-control"] == "no-store"
    subject = client.get(f"{ADMIN}/reviews/{item['id']}/subject", headers=reviewer["headers"]).json()
    assert subject == {"legal_representative": "李四", "contact_phone": "+8613800138000"}
    decided = client.post(f"{ADMIN}/reviews/{item['id']}", json={"decision": "approve"}, headers=reviewer["headers"])
    assert decided.status_code == 200, decided.text
    page = client.get(f"{ORGS}/{created['id']}").json()  # public, no login
    assert page["status"] == "verified" and page["verified_at"]
    assert page["uscc"] == code and page["contact_phone"] == "138****8000" and page["ip_region"]
    mine = client.get("/api/v1/me/organizations", headers=auth(person)).json()
    assert [o["status"] for o in mine if o["id"] == created["id"]] == ["verified"]
    with rt.db.read() as db:
        actions = set(db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id.in_(
            [created["id"], item["id"]]))).all())
        org = db.get(Organization, created["id"])
        assert b"\xe6\x9d\x8e" not in org.legal_representative_enc  # 李
    assert {"organization.applied", "document.viewed", "review.personal_data_shown", "organization.verified"} <= actions


def test_rejection_has_a_reason_hides_the_page_and_frees_the_code(client, rt, provider):
    person = verified_person(client, rt, provider)
    code = new_uscc()
    created = apply(client, person, uscc=code).json()
    again = apply(client, person, uscc=code)
    assert again.status_code == 409 and again.json()["code"] == "uscc_taken"
    reviewer = make_staff(rt, "reviewer")
    item = review_of(client, rt, reviewer, created["id"])
    claim_and_open(client, reviewer, item["id"])
    no_reason = client.post(f"{ADMIN}/reviews/{item['id']}", json={"decision": "reject"}, headers=reviewer["headers"])
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    decided = client.post(f"{ADMIN}/reviews/{item['id']}", json={"decision": "reject", "reason": "营业执照模糊"},
                          headers=reviewer["headers"])
    assert decided.status_code == 200
    assert client.get(f"{ORGS}/{created['id']}").status_code == 404
    mine = next(o for o in client.get("/api/v1/me/organizations", headers=auth(person)).json()
                if o["id"] == created["id"])
    assert mine["status"] == "rejected" and mine["reason"] == "营业执照模糊"
    assert apply(client, person, uscc=code).status_code == 202


def test_names_like_state_organs_need_strict_review_and_a_reason_to_approve(client, rt, provider):
    person = verified_person(client, rt, provider)
    created = apply(client, person, name="中华全国某某协会").json()
    assert created["strict_review"] is True
    reviewer = make_staff(rt, "reviewer")
    item = review_of(client, rt, reviewer, created["id"])
    assert item["payload"]["strict_review"] is True and "中华" in item["payload"]["strict_terms"]
    claim_and_open(client, reviewer, item["id"])
    bare = client.post(f"{ADMIN}/reviews/{item['id']}", json={"decision": "approve"}, headers=reviewer["headers"])
    assert bare.status_code == 422 and bare.json()["code"] == "reason_required"
    assert client.get("/api/v1/me/organizations", headers=auth(person)).json()[0]["status"] == "pending_review"
    approved = client.post(f"{ADMIN}/reviews/{item['id']}", headers=reviewer["headers"],
                           json={"decision": "approve", "reason": "已核对民政登记证书"})
    assert approved.status_code == 200
    assert client.get(f"{ORGS}/{created['id']}").json()["status"] == "verified"


def test_only_verified_people_apply(client, rt):
    person = register_account(client, rt)
    answer = apply(client, person)
    assert answer.status_code == 403 and answer.json()["code"] == "real_name_required"


def test_each_bad_uscc_says_which_part_and_nothing_is_stored(client, rt, provider):
    person = verified_person(client, rt, provider)
    before = uploads(rt)
    with rt.db.read() as db:
        count = db.scalar(select(func.count()).select_from(Organization))
    body = "9111A000600037341"
    from passport.identity.uscc import check_character

    for code, part in (("91110000600037341", "length"), ("9111000060003734IL", "charset"),
                       (body + check_character(body), "region"), ("91110000600037341M", "check")):
        answer = apply(client, person, uscc=code)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_uscc" and answer.json()["part"] == part
    assert apply(client, person, uscc="9111000060003734IL").json()["position"] == 17
    assert uploads(rt) == before
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(Organization)) == count


def test_the_licence_is_checked_by_its_content_and_size(client, rt, provider):
    person = verified_person(client, rt, provider)
    before = uploads(rt)
    renamed = apply(client, person, license_bytes=EXECUTABLE, filename="licence.png", mime="image/png")
    assert renamed.status_code == 422 and renamed.json()["code"] == "invalid_file_type"
    oversized = apply(client, person, license_bytes=PNG + bytes(5 * 1024 * 1024))
    assert oversized.status_code == 422 and oversized.json()["code"] == "file_too_large"
    far_too_big = apply(client, person, license_bytes=PNG + bytes(6 * 1024 * 1024))
    assert far_too_big.status_code == 413 and far_too_big.json()["code"] == "body_too_large"
    empty = apply(client, person, license_bytes=b"")
    assert empty.status_code == 422
    assert uploads(rt) == before
    for data, mime in ((JPEG, "image/jpeg"), (PDF, "application/pdf")):
        assert apply(client, person, license_bytes=data, mime=mime, filename="x.bin").status_code == 202


def test_other_routes_keep_the_one_mebibyte_cap(client, rt):
    person = register_account(client, rt)
    answer = client.patch("/api/v1/me", json={"nickname": "x", "bio": "x" * (2 * 1024 * 1024)}, headers=auth(person))
    assert answer.status_code == 413


def test_uploaded_files_live_encrypted_outside_the_web_root_under_random_names(client, rt, provider):
    person = verified_person(client, rt, provider)
    created = apply(client, person, filename="我的执照.png").json()
    with rt.db.read() as db:
        org = db.get(Organization, created["id"])
        document = db.get(Document, org.license_id)
    path = documents.uploads_dir(rt) / document.stored_name
    assert path.exists() and "执照" not in document.stored_name and len(document.stored_name) == 48
    assert PNG not in path.read_bytes()
    assert client.get(f"/static/../uploads/{document.stored_name}").status_code == 404
    assert client.get(f"/uploads/{document.stored_name}").status_code == 404


def test_reviewer_routes_need_the_reviewer_role(client, rt, provider):
    person = verified_person(client, rt, provider)
    created = apply(client, person).json()
    reviewer, auditor = make_staff(rt, "reviewer"), make_staff(rt, "auditor")
    item = review_of(client, rt, reviewer, created["id"])
    url = f"{ADMIN}/reviews/{item['id']}/document"
    assert client.get(url, headers=auditor["headers"]).status_code == 403
    assert client.get(url, headers=auth(person)).status_code == 401
    assert client.get(url).status_code == 401
    # A reviewer without the claim sees neither the document nor the subject's data.
    unclaimed = client.get(url, headers=reviewer["headers"])
    assert unclaimed.status_code == 403 and unclaimed.json()["code"] == "claim_required"
    # The subject's full data only for the reviewer holding the claim.
    assert client.get(f"{ADMIN}/reviews/{item['id']}/subject", headers=reviewer["headers"]).json() == {}


def invite_and_accept(client, org_id: str, inviter: dict, invitee: dict) -> None:
    url = f"{ORGS}/{org_id}/administrators"
    assert client.post(url, json={"phone": invitee["phone"]}, headers=auth(inviter)).status_code == 202
    assert client.post(f"{url}/accept", headers=auth(invitee)).status_code == 204


def test_administrators_invite_accept_and_remove_each_other_by_phone(client, rt, provider):
    owner = verified_person(client, rt, provider)
    colleague, stranger = register_account(client, rt), register_account(client, rt)
    org_id = apply(client, owner).json()["id"]
    url = f"{ORGS}/{org_id}/administrators"
    added = client.post(url, json={"phone": colleague["phone"]}, headers=auth(owner))
    assert added.status_code == 202, added.text
    assert added.json() == {"status": "invited", "phone": f"{colleague['phone'][:3]}****{colleague['phone'][-4:]}"}
    assert client.post(f"{url}/accept", headers=auth(colleague)).status_code == 204
    assert client.post(url, json={"phone": colleague["phone"]}, headers=auth(owner)).json()["code"] == \
        "already_administrator"
    assert client.post(url, json={"phone": owner["phone"]}, headers=auth(stranger)).status_code == 403
    assert client.get(url, headers=auth(stranger)).status_code == 403
    listed = client.get(url, headers=auth(colleague)).json()
    assert {a["account_id"] for a in listed} == {owner["account"]["id"], colleague["account"]["id"]}
    assert all("****" in a["phone"] for a in listed)
    removed = client.delete(f"{url}/{owner['account']['id']}", headers=auth(colleague))
    assert removed.status_code == 204
    last = client.delete(f"{url}/{colleague['account']['id']}", headers=auth(colleague))
    assert last.status_code == 409 and last.json()["code"] == "last_administrator"
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(OrganizationAdmin)
                         .where(OrganizationAdmin.organization_id == org_id)) == 1


def test_an_invitation_reveals_no_account_and_gives_no_rights_until_accepted(client, rt, provider):
    owner = verified_person(client, rt, provider)
    invitee = register_account(client, rt)
    org_id = apply(client, owner).json()["id"]
    url = f"{ORGS}/{org_id}/administrators"
    unknown_phone = new_phone()
    unknown = client.post(url, json={"phone": unknown_phone}, headers=auth(owner))
    known = client.post(url, json={"phone": invitee["phone"]}, headers=auth(owner))
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == {"status": "invited", "phone": f"{unknown_phone[:3]}****{unknown_phone[-4:]}"}
    assert set(known.json()) == {"status", "phone"} and invitee["account"]["nickname"] not in known.text
    # Invited only: no administrator yet, not listed, not told about the organisation's admins.
    assert client.get(url, headers=auth(invitee)).status_code == 403
    assert invitee["account"]["id"] not in {a["account_id"] for a in client.get(url, headers=auth(owner)).json()}
    assert client.get("/api/v1/me/organizations", headers=auth(invitee)).json() == []
    assert [i["id"] for i in client.get("/api/v1/me/organization-invitations", headers=auth(invitee)).json()] == \
        [org_id]
    with rt.db.read() as db:
        notices = db.scalars(select(InboxMessage.template).where(
            InboxMessage.account_id == invitee["account"]["id"])).all()
    assert "realname_admin_invited" in notices
    # Declined: gone; the owner may invite again, and an accepted invitation makes an administrator.
    assert client.post(f"{url}/decline", headers=auth(invitee)).status_code == 204
    assert client.post(f"{url}/accept", headers=auth(invitee)).status_code == 404
    assert client.post(url, json={"phone": invitee["phone"]}, headers=auth(owner)).status_code == 202
    assert client.post(f"{url}/accept", headers=auth(invitee)).status_code == 204
    assert client.get(url, headers=auth(invitee)).status_code == 200
    with rt.db.read() as db:
        actions = set(db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == org_id)).all())
    assert {"organization.admin_invited", "organization.admin_declined", "organization.admin_accepted"} <= actions


def test_an_invited_account_cannot_be_trapped_as_the_last_administrator(client, rt, provider):
    attacker = verified_person(client, rt, provider)
    victim = register_account(client, rt)
    org_id = apply(client, attacker).json()["id"]
    url = f"{ORGS}/{org_id}/administrators"
    assert client.post(url, json={"phone": victim["phone"]}, headers=auth(attacker)).status_code == 202
    # The invitation is no administrator: the attacker cannot leave, and the victim is not blocked.
    left = client.delete(f"{url}/{attacker['account']['id']}", headers=auth(attacker))
    assert left.status_code == 409 and left.json()["code"] == "last_administrator"
    with rt.db.read() as db:
        assert service.cancellation_blockers(rt, db, victim["account"]["id"]) == []
    # The inviter may also withdraw the invitation.
    assert client.delete(f"{url}/{victim['account']['id']}", headers=auth(attacker)).status_code == 204
    assert client.post(f"{url}/accept", headers=auth(victim)).status_code == 404


def set_status(rt, account_id: str, status: str) -> None:
    with rt.db.write() as db:
        db.get(Account, account_id).status = status


def test_an_administrator_being_cancelled_does_not_count(client, rt, provider):
    owner, colleague = verified_person(client, rt, provider), register_account(client, rt)
    org_id = apply(client, owner).json()["id"]
    invite_and_accept(client, org_id, owner, colleague)
    reviewer = make_staff(rt, "reviewer")
    item = review_of(client, rt, reviewer, org_id)
    claim_and_open(client, reviewer, item["id"])
    client.post(f"{ADMIN}/reviews/{item['id']}", json={"decision": "approve"}, headers=reviewer["headers"])
    with rt.db.read() as db:
        assert service.cancellation_blockers(rt, db, owner["account"]["id"]) == []
    set_status(rt, colleague["account"]["id"], "cancelling")
    with rt.db.read() as db:
        assert service.cancellation_blockers(rt, db, owner["account"]["id"]) == [
            {"organization_id": org_id, "name": "杭州云栖科技有限公司"}]
    left = service_call_remove(rt, owner, org_id, owner["account"]["id"])
    assert left.code == "last_administrator"
    set_status(rt, colleague["account"]["id"], "active")
    assert service_call_remove(rt, owner, org_id, owner["account"]["id"]) is None


def service_call_remove(rt, actor: dict, org_id: str, target_id: str):
    try:
        organizations.remove_administrator(rt, Origin(channel="api"), actor["account"]["id"], org_id, target_id)
    except errors.DomainError as exc:
        return exc
    return None


def test_an_application_under_review_blocks_cancellation_until_withdrawn(client, rt, provider):
    owner = verified_person(client, rt, provider)
    code = new_uscc()
    org_id = apply(client, owner, uscc=code).json()["id"]
    with rt.db.read() as db:
        org = db.get(Organization, org_id)
        licence, review_id = db.get(Document, org.license_id).stored_name, org.review_id
        assert service.cancellation_blockers(rt, db, owner["account"]["id"]) == [
            {"organization_id": org_id, "name": "杭州云栖科技有限公司"}]
    assert licence in uploads(rt)
    withdrawn = client.post(f"{ORGS}/{org_id}/withdraw", headers=auth(owner))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert client.post(f"{ORGS}/{org_id}/withdraw", headers=auth(owner)).json()["code"] == "not_under_review"
    with rt.db.read() as db:
        org = db.get(Organization, org_id)
        assert (org.uscc_live, org.legal_representative_enc, org.contact_phone_enc, org.license_id) == \
            (None, None, None, None)
        review = db.get(Review, review_id)
        assert (review.status, review.payload) == ("withdrawn", "{}")
        assert service.cancellation_blockers(rt, db, owner["account"]["id"]) == []
    assert licence not in uploads(rt)
    assert client.get(f"{ORGS}/{org_id}").status_code == 404
    assert apply(client, owner, uscc=code).status_code == 202  # the code is free again


def test_a_cancelled_account_cannot_apply(client, rt, provider):
    owner = verified_person(client, rt, provider)
    set_status(rt, owner["account"]["id"], "cancelled")
    before = uploads(rt)
    try:
        organizations.apply_organization(rt, Origin(channel="api"), owner["account"]["id"], name="某某工作室",
                                   uscc=new_uscc(), legal_representative="李四", contact_phone="13800138000",
                                   license=documents.Upload(PNG))
    except errors.DomainError as exc:
        assert exc.code == "account_cancelled"
    else:
        raise AssertionError("a cancelled account applied")
    assert uploads(rt) == before
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(Organization)
                         .where(Organization.created_by == owner["account"]["id"])) == 0
