"""ID-number probing (issue 15): someone else's ID number with a wrong name gets the same answer,
through the same path (one identity check), whether or not the number is verified on an account;
the per-number limit answers only an identity the check passed."""

from __future__ import annotations

import pytest

from passport.realname import providers
from passport_testing import new_id_number, register_account

from .conftest import auth

ME = "/api/v1/me/real-name"
OWNER = "张三"


@pytest.fixture()
def register(provider, monkeypatch):
    """A stand-in for the national register: a number matches only its owner's name. Counts checks."""
    calls: list[str] = []
    provider("dev")

    def check(self, name, id_number):
        calls.append(id_number)
        if name == OWNER:
            return providers.Outcome("verified", reference="register")
        return providers.Outcome("rejected", reference="register", reason="name_id_mismatch")

    monkeypatch.setattr(providers.DevProvider, "check", check)
    return calls


def test_a_wrong_name_learns_nothing_of_whether_the_number_is_used(client, rt, register):
    holder = register_account(client, rt)
    used, unused = new_id_number(), new_id_number()
    assert client.post(ME, json={"name": OWNER, "id_number": used}, headers=auth(holder)).status_code == 200
    prober = register_account(client, rt)
    answers = {}
    for number in (used, unused):
        before = len(register)
        answer = client.post(ME, json={"name": "李四", "id_number": number}, headers=auth(prober))
        answers[number] = (answer.status_code, answer.json(), len(register) - before)
    assert answers[used] == answers[unused] == (
        200, {"status": "rejected", "reason": "name_id_mismatch", "provider": "dev"}, 1)
    status = client.get(ME, headers=auth(prober)).json()
    assert status["status"] == "rejected" and status["id_number"] is None


def test_the_limit_answers_only_a_matching_identity(client, rt, register):
    holder, second = register_account(client, rt), register_account(client, rt)
    number = new_id_number()
    assert client.post(ME, json={"name": OWNER, "id_number": number}, headers=auth(holder)).status_code == 200
    limited = client.post(ME, json={"name": OWNER, "id_number": number}, headers=auth(second))
    assert limited.status_code == 409 and limited.json()["code"] == "id_number_limit"
    assert len(register) == 2  # the limit came after the check, not instead of it
    me = client.get(ME, headers=auth(second)).json()
    assert me["status"] == "rejected" and me["reason"] == "id_number_limit" and me["id_number"] is None
    free = client.post(ME, json={"name": OWNER, "id_number": new_id_number()}, headers=auth(second))
    assert free.status_code == 200 and free.json()["status"] == "verified"
