"""Person verification (POST /me/real-name): validation with specific errors, the dev provider, masks
in /me, the guardian rule, nothing stored on bad input, and the per-ID account limit."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import httpx
from sqlalchemy import select

from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.realname.models import Attempt
from passport.realname.person import ID_MESSAGES
from passport_testing import new_id_number, register_account

from .conftest import auth

ME = "/api/v1/me/real-name"


def test_dev_provider_verifies_and_me_shows_only_masks(client, rt, provider):
    provider("dev")
    done = register_account(client, rt)
    number = new_id_number()
    answer = client.post(ME, json={"name": "张小三", "id_number": number[:-1] + number[-1].lower()},
                         headers=auth(done))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "verified", "reason": None, "provider": "dev"}
    me = client.get("/api/v1/me", headers=auth(done)).json()
    masked = f"{number[:4]}{'*' * 10}{number[-4:]}"
    assert me["real_name"] == {"status": "verified", "name": "张*三", "id_number": masked}
    assert number not in client.get("/api/v1/me", headers=auth(done)).text
    with rt.db.read() as db:
        account = db.get(Account, done["account"]["id"])
        assert b"\xe5\xbc\xa0" not in account.real_name_enc  # 张 in UTF-8: stored encrypted
        assert number.encode() not in account.id_number_enc
        attempt = db.scalars(select(Attempt).where(Attempt.account_id == account.id)).one()
        assert attempt.provider == "dev" and attempt.status == "verified"
        events = db.scalars(select(AuditEvent).where(AuditEvent.subject_id == account.id,
                                                     AuditEvent.action.like("realname.%"))
                             .order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == ["realname.submitted", "realname.verified"]
    assert all(number not in e.details for e in events)
    status = client.get(ME, headers=auth(done)).json()
    assert status["status"] == "verified" and status["provider"] == "dev" and status["name"] == "张*三"


def test_middle_dot_names_are_accepted_and_stored_with_one_dot_form(client, rt, provider):
    provider("dev")
    done = register_account(client, rt)
    answer = client.post(ME, json={"name": "阿卜杜•热合曼", "id_number": new_id_number()}, headers=auth(done))
    assert answer.status_code == 200, answer.text
    assert client.get("/api/v1/me", headers=auth(done)).json()["real_name"]["name"] == "阿*****曼"


def test_each_bad_id_number_says_which_part_is_wrong_and_stores_nothing(client, rt, provider):
    provider("dev")
    done = register_account(client, rt)
    good = new_id_number(date(1990, 3, 7), "110105")
    future = (date.today() + timedelta(days=400)).strftime("%Y%m%d")
    body_future = f"110105{future}123"
    from passport.identity.resident_id import check_character

    cases = {
        "length": good[:-1],
        "format": good[:10] + "A" + good[11:],
        "region": "99" + good[2:],
        "date": good[:10] + "0230" + good[14:],
        "sequence": good[:14] + "000" + good[17:],
        "check": good[:-1] + ("0" if good[-1] != "0" else "1"),
    }
    cases["date_future"] = body_future + check_character(body_future)
    for part, number in cases.items():
        answer = client.post(ME, json={"name": "张三", "id_number": number}, headers=auth(done))
        assert answer.status_code == 422, (part, answer.text)
        problem = answer.json()
        assert problem["code"] == "invalid_id_number"
        assert problem["part"] == part.removesuffix("_future")
        assert problem["errors"][0]["field"] == "id_number"
    english = client.post(ME, json={"name": "张三", "id_number": cases["check"]},
                          headers=auth(done) | {"Accept-Language": "en"}).json()
    assert english["detail"] == ID_MESSAGES["check"]
    chinese = client.post(ME, json={"name": "张三", "id_number": cases["check"]}, headers=auth(done)).json()
    assert "校验" in chinese["detail"]
    with rt.db.read() as db:
        assert db.scalars(select(Attempt).where(Attempt.account_id == done["account"]["id"])).all() == []
        assert db.get(Account, done["account"]["id"]).real_name_status == "none"


def test_bad_names_are_refused_with_the_reason(client, rt, provider):
    provider("dev")
    done = register_account(client, rt)
    for name, part in (("张", "length"), ("·张三", "dot"), ("张··三", "dot"), ("Zhang San", "characters"),
                       ("张三1", "characters"), ("张" * 31, "length")):
        answer = client.post(ME, json={"name": name, "id_number": new_id_number()}, headers=auth(done))
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_name", name
        assert answer.json()["part"] == part, name


def test_under_fourteen_needs_a_guardian(client, rt, provider):
    provider("dev")
    done = register_account(client, rt)
    today = rt.clock.now().date()
    young = new_id_number(date(today.year - 13, 1, 1))
    answer = client.post(ME, json={"name": "张三", "id_number": young}, headers=auth(done))
    assert answer.status_code == 422
    assert answer.json()["code"] == "guardian_required" and answer.json()["age"] == 13
    assert "监护人" in answer.json()["detail"]
    fourteen = new_id_number(date(today.year - 15, 1, 1))
    assert client.post(ME, json={"name": "张三", "id_number": fourteen}, headers=auth(done)).status_code == 200


def test_one_id_number_binds_one_account_by_default(client, rt, provider):
    provider("dev")
    first, second = register_account(client, rt), register_account(client, rt)
    number = new_id_number()
    assert client.post(ME, json={"name": "张三", "id_number": number}, headers=auth(first)).status_code == 200
    again = client.post(ME, json={"name": "张三", "id_number": number.lower()}, headers=auth(second))
    assert again.status_code == 409 and again.json()["code"] == "id_number_limit"
    assert client.post(ME, json={"name": "张三", "id_number": new_id_number()},
                       headers=auth(first)).json()["code"] == "already_verified"


def test_the_limit_is_configurable(client, rt, provider):
    provider("dev", realname_accounts_per_id=2)
    people = [register_account(client, rt) for _ in range(3)]
    number = new_id_number()
    codes = [client.post(ME, json={"name": "张三", "id_number": number}, headers=auth(p)).status_code
             for p in people]
    assert codes == [200, 200, 409]


def test_two_accounts_binding_one_id_at_once_one_succeeds(live_server, rt, provider):
    provider("dev")
    number = new_id_number()
    with httpx.Client(base_url=live_server) as http:
        people = [register_account(http, rt) for _ in range(4)]
    barrier = threading.Barrier(len(people))
    answers: list[httpx.Response] = []

    def bind(person):
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            answers.append(http.post(ME, json={"name": "张三", "id_number": number}, headers=auth(person)))

    threads = [threading.Thread(target=bind, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409], [a.text for a in answers]
    from passport.admin.enforcement import id_number_index

    with rt.db.read() as db:
        holders = db.scalars(select(Account).where(Account.id_number_bidx == id_number_index(rt, number))).all()
    assert len(holders) == 1 and holders[0].real_name_status == "verified"


def test_the_dev_provider_is_refused_in_prod():
    import pytest
    from pydantic import ValidationError

    from passport.settings import Settings

    with pytest.raises(ValidationError, match="PASSPORT_REALNAME_PROVIDER=dev"):
        Settings(env="prod", realname_provider="dev", database_url="postgresql://x/y", encryption_keys="k",
                 blind_index_key="k", secret_key="k", sms_backend="aliyun", email_backend="smtp",
                 base_url="https://passport.example.cn")


def test_a_check_that_never_settled_is_released_after_ten_minutes(client, rt, provider, monkeypatch):
    """The process died while waiting for the provider: the account stays pending until a later
    submission of the number meets the stale check and releases it. The pending claim holds no place
    for the number (issue 15: the identity check decides, not the order of submissions)."""
    import pytest

    from passport.audit.service import Origin
    from passport.realname import person, providers

    class Died(BaseException):
        """Stands in for the process ending: nothing after the reservation runs."""

    def died(self, name, id_number):
        raise Died

    provider("dev")
    first, second = register_account(client, rt), register_account(client, rt)
    number = new_id_number()
    monkeypatch.setattr(providers.DevProvider, "check", died)
    with pytest.raises(Died):
        person.submit_person(rt, Origin(), first["account"]["id"], name="张三", id_number=number)
    monkeypatch.setattr(providers.DevProvider, "check", lambda self, name, id_number: providers.Outcome("verified"))
    assert client.get("/api/v1/me", headers=auth(first)).json()["real_name"]["status"] == "pending"
    taken = client.post(ME, json={"name": "张三", "id_number": number}, headers=auth(second))
    assert taken.status_code == 200 and taken.json()["status"] == "verified"
    rt.clock.advance(minutes=11)
    third = register_account(client, rt)
    limited = client.post(ME, json={"name": "张三", "id_number": number}, headers=auth(third))
    assert limited.status_code == 409 and limited.json()["code"] == "id_number_limit"
    assert client.get("/api/v1/me", headers=auth(first)).json()["real_name"]["status"] == "none"
    with rt.db.read() as db:
        reasons = db.scalars(select(Attempt.reason).where(Attempt.account_id == first["account"]["id"])).all()
    assert reasons == ["interrupted"]


def test_a_provider_that_crashes_releases_the_reservation(client, rt, provider, monkeypatch):
    from passport.realname import providers

    provider("dev")
    person = register_account(client, rt)

    def broken(self, name, id_number):
        raise KeyError("bug")

    monkeypatch.setattr(providers.DevProvider, "check", broken)
    answer = client.post(ME, json={"name": "张三", "id_number": new_id_number()}, headers=auth(person))
    assert answer.status_code == 503 and answer.json()["code"] == "provider_unavailable"
    assert client.get("/api/v1/me", headers=auth(person)).json()["real_name"]["status"] == "none"
