"""The account status machine: one writer (accounts.service.set_status), the allowed transitions as
data, and a condition on the current status in the same UPDATE (ARCHITECTURE "One writer per piece
of state").

SQLite serialises writers, so a race is staged: the other writer's change commits, and the caller's
read answers the row as it was just before (on PostgreSQL, a read between the two commits); the
caller then goes on with what it read."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from credentials_testing import NEW_PASSWORD, send_code
from passport import errors
from passport.accounts import service as accounts
from passport.accounts.models import Account
from passport.admin import enforcement
from passport.admin.models import AccountAction
from passport.admin.service import StaffPrincipal
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.credentials import service as credentials
from passport.db import new_id
from passport.sessions.models import LoginSession
from passport.sessions.service import Principal
from passport_testing import make_staff, register_account

_accounts = Account.__table__


def _bare_account(rt, status: str = "active") -> str:
    now = rt.clock.now()
    with rt.db.write() as db:
        account = Account(id=new_id(), kind="person", status=status, nickname="状态测试", created_at=now,
                          updated_at=now)
        db.add(account)
    return account.id


def _put(rt, account_id: str, status: str) -> None:
    with rt.db.write() as db:
        db.execute(update(_accounts).where(_accounts.c.id == account_id).values(status=status))


def _status(rt, account_id: str) -> tuple[str, str | None]:
    with rt.db.read() as db:
        row = db.execute(select(_accounts.c.status, _accounts.c.status_reason)
                         .where(_accounts.c.id == account_id)).one()
    return row.status, row.status_reason


def _events(rt, action: str, account_id: str) -> list[AuditEvent]:
    with rt.db.read() as db:
        return db.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                   AuditEvent.subject_id == account_id)
                           .order_by(AuditEvent.seq)).all()


def _committed(rt, account_id: str, **values) -> None:
    """The other writer's change, committed."""
    with rt.db.write() as db:
        db.execute(update(_accounts).where(_accounts.c.id == account_id).values(**values))


def _read_before(monkeypatch, name: str, account_id: str, **as_read) -> None:
    """The caller's ``accounts.<name>`` reads of ``account_id`` answer the row as it was before the
    other writer's commit (``as_read``): on PostgreSQL, reads just before that commit. A mapped
    object is made stale once (it is the session's one copy: later reads are the same object)."""
    real = getattr(accounts, name)
    stale_objects = []

    def read_before_the_other_commit(db, key):
        found = real(db, key)
        if found is None or found.id != account_id:
            return found
        if not isinstance(found, Account):
            return SimpleNamespace(**(found._asdict() | as_read))
        if not stale_objects:
            stale_objects.append(found)
            for column, value in as_read.items():
                set_committed_value(found, column, value)
        return found

    monkeypatch.setattr(accounts, name, read_before_the_other_commit)


# --- (1) a transition the table does not allow is refused -------------------------------------------

@pytest.mark.parametrize(("source", "to"), [("terminated", "frozen"), ("terminated", "cancelling"),
                                            ("cancelled", "active"),
                                            ("frozen", "suspended"), ("frozen", "restricted"),
                                            ("frozen", "cancelling"), ("suspended", "cancelling")])
def test_disallowed_transition_is_refused_and_changes_nothing(rt, source, to):
    account_id = _bare_account(rt, source)
    with pytest.raises(accounts.InvalidTransition) as refused, rt.db.write() as db:
        accounts.set_status(db, account_id, to, expected=source, now=rt.clock.now())
    assert refused.value.code == "invalid_transition" and refused.value.status == 409
    assert _status(rt, account_id) == (source, None)


def test_one_disallowed_expected_status_refuses_the_whole_change(rt):
    account_id = _bare_account(rt, "active")
    with pytest.raises(accounts.InvalidTransition), rt.db.write() as db:
        accounts.set_status(db, account_id, "frozen", expected=("active", "suspended"), now=rt.clock.now())
    assert _status(rt, account_id) == ("active", None)


def test_final_statuses_have_no_way_out():
    assert not [pair for pair in accounts.TRANSITIONS if pair[0] == "cancelled"]
    # A termination is undone only by a reversal on appeal (issue 18), to the status it had before.
    assert {to for source, to in accounts.TRANSITIONS if source == "terminated"} == {"active", "restricted",
                                                                                     "suspended"}
    assert {status for pair in accounts.TRANSITIONS for status in pair} <= set(accounts.STATUSES)
    assert all(reason.strip() for reason in accounts.TRANSITIONS.values())


# --- (2) a writer whose expected status no longer holds changes nothing ------------------------------

def test_freeze_after_a_staff_suspension_committed_leaves_the_suspension(client, rt, monkeypatch):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    principal = Principal(account_id, user["session"]["id"], "active")
    until = rt.clock.now() + timedelta(days=3)
    _committed(rt, account_id, status="suspended", status_reason="多次发布违法信息", status_until=until)
    _read_before(monkeypatch, "get", account_id, status="active", status_reason=None, status_until=None)
    with pytest.raises(errors.DomainError) as refused:
        credentials.freeze_own(rt, Origin(channel="api"), principal)
    # Refused as a freeze of a suspended account is: 409, and every session still ends.
    assert refused.value.code == "account_not_freezable" and refused.value.status == 409
    assert _status(rt, account_id) == ("suspended", "多次发布违法信息")
    assert not _events(rt, "account.frozen", account_id)
    [denied] = _events(rt, "account.freeze", account_id)
    assert denied.result == "denied" and json.loads(denied.details)["status"] == "suspended"
    with rt.db.read() as db:
        live = db.scalars(select(LoginSession).where(LoginSession.account_id == account_id,
                                                     LoginSession.revoked_at.is_(None))).all()
    assert live == []


def test_freeze_by_code_after_a_staff_termination_leaves_the_termination(client, rt, monkeypatch):
    user = register_account(client, rt)
    account_id, phone = user["account"]["id"], user["phone"]
    code = send_code(client, rt, phone, "freeze")
    _committed(rt, account_id, status="terminated", status_reason="终止服务")
    _read_before(monkeypatch, "find", account_id, status="active", status_reason=None)
    answer = client.post("/api/v1/account-freezes", json={"phone": phone, "code": code})
    assert answer.status_code == 409 and answer.json()["code"] == "account_not_freezable"
    assert _status(rt, account_id) == ("terminated", "终止服务")


def test_staff_suspension_after_the_owner_froze_leaves_the_freeze(client, rt, monkeypatch):
    """The other order: staff read ``active`` but the owner's freeze landed first. The action is
    refused as an action on a frozen account is, and nothing of it is kept."""
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    staff = make_staff(rt, "operator")
    principal = StaffPrincipal(staff["id"], "", staff["login"], "operator")
    _committed(rt, account_id, status="frozen")
    _read_before(monkeypatch, "get", account_id, status="active")
    with pytest.raises(errors.DomainError) as refused:
        enforcement.act(rt, Origin(channel="api"), principal, account_id, action="suspend", reason="多次发布违法信息",
                        until=rt.clock.now() + timedelta(days=3))
    assert refused.value.code == "invalid_transition" and refused.value.status == 409
    assert _status(rt, account_id) == ("frozen", None)
    assert not _events(rt, "account.action.suspend", account_id)
    with rt.db.read() as db:
        assert not db.scalars(select(AccountAction).where(AccountAction.account_id == account_id)).all()


def test_unfreeze_after_a_staff_termination_leaves_the_termination(client, rt, monkeypatch):
    user = register_account(client, rt)
    account_id, phone = user["account"]["id"], user["phone"]
    code = send_code(client, rt, phone, "freeze")
    frozen = client.post("/api/v1/account-freezes", json={"phone": phone, "code": code})
    assert frozen.status_code == 204, frozen.text
    code = send_code(client, rt, phone, "unfreeze")
    _committed(rt, account_id, status="terminated", status_reason="终止服务")
    _read_before(monkeypatch, "find", account_id, status="frozen", status_reason=None)
    answer = client.post("/api/v1/account-unfreezes", json={
        "phone": phone, "code": code, "recovery_key": user["recovery_key"], "new_password": NEW_PASSWORD})
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_code"
    assert _status(rt, account_id) == ("terminated", "终止服务")
    [failed] = _events(rt, "account.unfreeze", account_id)
    assert json.loads(failed.details)["reason"] == "not_frozen"


def test_a_writer_whose_expected_status_no_longer_holds_changes_nothing(rt):
    account_id = _bare_account(rt, "active")
    _put(rt, account_id, "suspended")
    with rt.db.write() as db:
        moved = accounts.set_status(db, account_id, "frozen", expected="active", now=rt.clock.now(), reason=None,
                                    until=None)
    assert moved is False
    assert _status(rt, account_id) == ("suspended", None)


def test_extra_condition_must_hold_too(rt):
    account_id = _bare_account(rt, "suspended")
    now = rt.clock.now()
    with rt.db.write() as db:
        db.execute(update(_accounts).where(_accounts.c.id == account_id)
                   .values(status_reason="暂停", status_until=now + timedelta(days=1)))
        lifted = accounts.set_status(db, account_id, "active", expected="suspended", now=now, reason=None, until=None,
                                     where=Account.status_until <= now)
    assert lifted is False
    assert _status(rt, account_id) == ("suspended", "暂停")


# --- (3) property: the table is what set_status enforces --------------------------------------------

@pytest.fixture(scope="module")
def machine_account(rt):
    return _bare_account(rt)


@hypothesis_settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actual=st.sampled_from(accounts.STATUSES),
       expected=st.sets(st.sampled_from(accounts.STATUSES), min_size=1, max_size=3),
       to=st.sampled_from(accounts.STATUSES))
def test_set_status_enforces_exactly_the_transition_table(rt, machine_account, actual, expected, to):
    account_id = machine_account
    _put(rt, account_id, actual)
    allowed = all((source, to) in accounts.TRANSITIONS for source in expected)
    try:
        with rt.db.write() as db:
            moved = accounts.set_status(db, account_id, to, expected=expected, now=rt.clock.now())
    except accounts.InvalidTransition:
        assert not allowed
        assert _status(rt, account_id)[0] == actual
        return
    assert allowed
    assert moved is (actual in expected)
    assert _status(rt, account_id)[0] == (to if actual in expected else actual)


@pytest.mark.parametrize("source", accounts.STATUSES)
@pytest.mark.parametrize("to", accounts.STATUSES)
def test_every_pair_moves_if_and_only_if_the_table_lists_it(rt, source, to):
    account_id = _bare_account(rt, source)
    try:
        with rt.db.write() as db:
            moved = accounts.set_status(db, account_id, to, expected=source, now=rt.clock.now())
    except accounts.InvalidTransition:
        moved = False
    assert moved is ((source, to) in accounts.TRANSITIONS)
    assert _status(rt, account_id)[0] == (to if moved else source)
