"""The account's own profile (GET/PATCH /me) and validation of registration input: API.md
"Conventions" (problem+json, errors[], language) and "Accounts"."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from passport.accounts.models import Account
from passport.agreements.models import Consent
from passport.web.i18n import LOCALE_DIR
from passport_testing import AGREEMENT_VERSIONS, STRONG_PASSWORD, bearer, last_code, new_phone, register_account

ACCOUNTS = "/api/v1/accounts"
PROBLEM = "application/problem+json"


def row_counts(rt) -> tuple[int, int]:
    with rt.db.read() as db:
        return (db.scalar(select(func.count()).select_from(Account)),
                db.scalar(select(func.count()).select_from(Consent)))


def fields_of(answer) -> list[str]:
    return [e["field"] for e in answer.json().get("errors", [])]


def assert_problem(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    return body


# --- GET /me, PATCH /me -------------------------------------------------------------------------

def test_me_without_credentials_is_a_401_problem(client):
    assert_problem(client.get("/api/v1/me"), 401, "not_authenticated")
    assert_problem(client.get("/api/v1/me", headers=bearer("not-a-real-token")), 401, "not_authenticated")
    assert_problem(client.get("/api/v1/me", headers=bearer("x" * 500)), 401, "not_authenticated")


def test_me_shows_the_account_masked(client, rt):
    done = register_account(client, rt)
    body = client.get("/api/v1/me", headers=bearer(done["session"]["token"])).json()
    phone = done["phone"]
    assert body["phone"] == f"{phone[:3]}****{phone[7:]}"
    assert phone not in str(body)
    assert body["email"] is None
    assert body["real_name"]["status"] == "none"
    assert body["pending_agreements"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["created_at"])


def test_patch_me_updates_nickname_and_bio(client, rt):
    token = register_account(client, rt)["session"]["token"]
    answer = client.patch("/api/v1/me", json={"nickname": "  新昵称 ", "bio": "第一行\n第二行"},
                          headers=bearer(token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["nickname"] == "新昵称"
    assert answer.json()["bio"] == "第一行\n第二行"
    again = client.get("/api/v1/me", headers=bearer(token)).json()
    assert again["nickname"] == "新昵称" and again["bio"] == "第一行\n第二行"
    # Only what is given changes; an explicit null bio clears it.
    assert client.patch("/api/v1/me", json={"bio": None}, headers=bearer(token)).json()["bio"] is None
    assert client.get("/api/v1/me", headers=bearer(token)).json()["nickname"] == "新昵称"


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"nickname": "长" * 33}, "nickname", id="nickname-too-long"),
    pytest.param({"nickname": "长" * 65}, "nickname", id="nickname-far-too-long"),
    pytest.param({"nickname": "   "}, "nickname", id="nickname-blank"),
    pytest.param({"nickname": "bad\x00name"}, "nickname", id="nickname-nul"),
    pytest.param({"nickname": "bad\nname"}, "nickname", id="nickname-newline"),
    pytest.param({"nickname": "zero\u200bwidth"}, "nickname", id="nickname-format-char"),
    pytest.param({"bio": "字" * 201}, "bio", id="bio-too-long"),
    pytest.param({"bio": "字" * 1001}, "bio", id="bio-far-too-long"),
    pytest.param({"bio": "bell\x07"}, "bio", id="bio-control"),
    pytest.param({"bio": "tab\there"}, "bio", id="bio-tab"),
    pytest.param({"avatar": "x"}, "avatar", id="unknown-field"),
])
def test_patch_me_rejects_bad_profile_values(client, rt, change, field):
    done = register_account(client, rt)
    token = done["session"]["token"]
    answer = client.patch("/api/v1/me", json=change, headers=bearer(token))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert field in fields_of(answer)
    me = client.get("/api/v1/me", headers=bearer(token)).json()
    assert me["nickname"] == "测试用户" and me["bio"] is None


# --- registration input -------------------------------------------------------------------------

def registration(rt, client, **changes) -> dict:
    phone = new_phone()
    sent = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"})
    assert sent.status_code == 202
    body = {"phone": phone, "code": last_code(rt, phone, "register"), "password": STRONG_PASSWORD,
            "nickname": "校验", "agreements": dict(AGREEMENT_VERSIONS)}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize("missing", ["phone", "code", "password", "nickname"])
def test_registration_names_each_missing_field(client, rt, missing):
    before = row_counts(rt)
    answer = client.post(ACCOUNTS, json=registration(rt, client, **{missing: _DROP}))
    assert_problem(answer, 422, "validation_failed")
    assert fields_of(answer) == [missing]
    assert row_counts(rt) == before


def test_registration_without_agreements_requires_them(client, rt):
    before = row_counts(rt)
    answer = client.post(ACCOUNTS, json=registration(rt, client, agreements=_DROP))
    assert_problem(answer, 422, "agreements_required")
    assert sorted(fields_of(answer)) == ["agreements.privacy-policy", "agreements.user-agreement"]
    assert row_counts(rt) == before


def test_registration_with_empty_body_names_every_required_field(client, rt):
    answer = client.post(ACCOUNTS, json={})
    assert_problem(answer, 422, "validation_failed")
    assert set(fields_of(answer)) == {"phone", "code", "password", "nickname"}


@pytest.mark.parametrize("password", ["short1!", "alllowercaseletters", "Password1", "Aa123456", "P@ssw0rd"])
def test_registration_refuses_weak_passwords(client, rt, password):
    before = row_counts(rt)
    answer = client.post(ACCOUNTS, json=registration(rt, client, password=password))
    body = assert_problem(answer, 422, "weak_password")
    assert body["errors"] and all(e["field"] == "password" for e in body["errors"])
    assert row_counts(rt) == before


def test_registration_refuses_a_password_containing_the_phone(client, rt):
    body = registration(rt, client)
    answer = client.post(ACCOUNTS, json=body | {"password": f"Ab!{body['phone']}"},
                         headers={"Accept-Language": "en"})
    problem = assert_problem(answer, 422, "weak_password")
    assert "contains_phone" in [e["message"] for e in problem["errors"]]


@pytest.mark.parametrize("phone", ["12345678901", "1381234567", "+1 415 555 0100", "phone"])
def test_registration_refuses_an_invalid_phone(client, rt, phone):
    before = row_counts(rt)
    answer = client.post(ACCOUNTS, json=registration(rt, client, phone=phone))
    assert_problem(answer, 422, "invalid_phone")
    assert fields_of(answer) == ["phone"]
    assert row_counts(rt) == before


@pytest.mark.parametrize(("nickname", "code"), [
    ("   ", "invalid_nickname"), ("名" * 33, "invalid_nickname"), ("\u202eevil", "invalid_nickname"),
    ("a\x1bb", "validation_failed"),  # a control character: refused by the input guard, before the schema
])
def test_registration_refuses_a_bad_nickname(client, rt, nickname, code):
    before = row_counts(rt)
    answer = client.post(ACCOUNTS, json=registration(rt, client, nickname=nickname))
    assert_problem(answer, 422, code)
    assert fields_of(answer) == ["nickname"]
    assert row_counts(rt) == before


def test_registration_refuses_unknown_fields(client, rt):
    before = row_counts(rt)
    answer = client.post(ACCOUNTS, json=registration(rt, client, is_admin=True))
    assert_problem(answer, 422, "validation_failed")
    assert fields_of(answer) == ["is_admin"]
    assert row_counts(rt) == before


def test_registration_refuses_wrong_types(client, rt):
    answer = client.post(ACCOUNTS, json=registration(rt, client, agreements=["user-agreement"]))
    assert_problem(answer, 422, "validation_failed")
    assert fields_of(answer) == ["agreements"]
    answer = client.post(ACCOUNTS, content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["code"] == "validation_failed"


def test_validation_failures_leave_the_code_usable(client, rt):
    body = registration(rt, client)
    for bad in ({"password": "weak"}, {"nickname": "\x00"}, {"agreements": {}}):
        assert client.post(ACCOUNTS, json=body | bad).status_code == 422
    assert client.post(ACCOUNTS, json=body).status_code == 201


def test_oversized_body_is_refused(client, rt):
    before = row_counts(rt)
    body = registration(rt, client, nickname="x" * (1024 * 1024 + 1))
    answer = client.post(ACCOUNTS, json=body)
    assert_problem(answer, 413, "body_too_large")
    assert row_counts(rt) == before


def test_oversized_body_without_content_length_is_refused(client, rt):
    before = row_counts(rt)

    def chunks():
        yield b'{"nickname": "'
        for _ in range(20):
            yield b"x" * 64 * 1024
        yield b'"}'

    answer = client.post(ACCOUNTS, content=chunks(), headers={"content-type": "application/json"})
    assert_problem(answer, 413, "body_too_large")
    assert row_counts(rt) == before


# --- language -------------------------------------------------------------------------------------

ZH_CATALOG = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"


def test_problem_titles_follow_accept_language(client):
    english = client.get("/api/v1/me", headers={"Accept-Language": "en"}).json()
    assert english["title"] == "Please log in first."
    assert english["detail"] == "Please log in first."
    if not ZH_CATALOG.exists():
        pytest.skip(f"no zh_CN catalog yet at {ZH_CATALOG}")
    default = client.get("/api/v1/me").json()
    chinese = client.get("/api/v1/me", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).json()
    assert default["title"] == chinese["title"] != english["title"]
    assert re.search(r"[\u4e00-\u9fff]", default["title"])
    assert default["code"] == english["code"] == "not_authenticated"


def test_field_messages_follow_accept_language(client, rt):
    answer = client.post(ACCOUNTS, json=registration(rt, client, phone="123"),
                         headers={"Accept-Language": "en-US,en;q=0.8"})
    assert answer.json()["title"] == "Enter an 11-digit mainland mobile number."
    assert answer.json()["errors"][0]["message"] == "Enter an 11-digit mainland mobile number."
    if not ZH_CATALOG.exists():
        pytest.skip(f"no zh_CN catalog yet at {ZH_CATALOG}")
    chinese = client.post(ACCOUNTS, json=registration(rt, client, phone="123")).json()
    assert re.search(r"[\u4e00-\u9fff]", chinese["title"])
    assert re.search(r"[\u4e00-\u9fff]", chinese["errors"][0]["message"])


@pytest.mark.parametrize("field", ["code", "password", "nickname", "phone"])
def test_lone_surrogates_are_a_validation_error_not_a_crash(client, field):
    body = {"phone": "13812345678", "code": "123456", "password": "Qz7!mountain-Lark", "nickname": "x",
            "agreements": {"user-agreement": "1.0", "privacy-policy": "1.0"}}
    raw = json.dumps(body | {field: "\ud800"})  # json.dumps escapes it as \ud800, as a client could
    answer = client.post("/api/v1/accounts", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_failed"
    assert answer.json()["errors"][0]["field"] == field
