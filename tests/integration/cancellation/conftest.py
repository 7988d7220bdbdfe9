"""Fixtures of the cancellation tests: quick codes, a zero-day cooling-off, and a signed-in account."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from passport_testing import bearer, deliver_notices, last_code, register_account


@pytest.fixture(autouse=True)
def _deliver_the_notices_queued(rt):
    """Leave no notice of these tests in the outbox for later tests, at this test's clock."""
    yield
    deliver_notices(rt)


@pytest.fixture()
def quick_codes(rt):
    """No resend wait and no hourly cap: these tests send several codes to one number in a minute."""
    saved = (rt.settings.code_resend_seconds, rt.settings.code_per_hour, rt.settings.code_per_day)
    rt.settings.code_resend_seconds, rt.settings.code_per_hour, rt.settings.code_per_day = 0, 10_000, 10_000
    yield
    rt.settings.code_resend_seconds, rt.settings.code_per_hour, rt.settings.code_per_day = saved


@pytest.fixture()
def zero_day(rt):
    """PASSPORT_CANCELLATION_COOLING_OFF_DAYS=0: a request is due at the worker's next round."""
    saved = rt.settings.cancellation_cooling_off_days
    rt.settings.cancellation_cooling_off_days = 0
    yield
    rt.settings.cancellation_cooling_off_days = saved


@dataclass
class Member:
    """A registered account seen through the API: id, phone, password, bearer headers."""

    client: object
    rt: object
    id: str
    phone: str
    password: str
    token: str
    recovery_key: str

    @property
    def headers(self) -> dict:
        return bearer(self.token)

    def own_code(self, purpose: str) -> str:
        sent = self.client.post("/api/v1/me/verification-codes", json={"purpose": purpose}, headers=self.headers)
        assert sent.status_code == 202, sent.text
        return last_code(self.rt, self.phone, purpose)

    def request(self, password: str | None = None, code: str | None = None):
        code = code if code is not None else self.own_code("cancel_account")
        return self.client.post("/api/v1/me/cancellation", headers=self.headers,
                                json={"password": self.password if password is None else password, "code": code})

    def me(self):
        return self.client.get("/api/v1/me", headers=self.headers)


def new_member(client, rt, **kwargs) -> Member:
    done = register_account(client, rt, **kwargs)
    return Member(client, rt, done["account"]["id"], done["phone"], done["password"], done["session"]["token"],
                  done["recovery_key"])


@pytest.fixture()
def member(client, rt, quick_codes) -> Member:
    return new_member(client, rt)


@pytest.fixture()
def make_member(client, rt, quick_codes):
    """Register another account: ``make_member(phone=...)``."""
    return lambda **kwargs: new_member(client, rt, **kwargs)


@pytest.fixture()
def dev_realname(rt):
    """Real-name verification by the dev provider (format checks only)."""
    saved = rt.settings.realname_provider
    rt.settings.realname_provider = "dev"
    yield
    rt.settings.realname_provider = saved


_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def new_id_number() -> str:
    """A valid resident ID number (GB 11643) nobody else in the suite uses."""
    import random
    from datetime import date, timedelta

    born = date(1970, 1, 1) + timedelta(days=random.randrange(10_000))
    body = f"110105{born:%Y%m%d}{random.randrange(1000):03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


@pytest.fixture()
def id_numbers():
    return new_id_number


@pytest.fixture()
def verified_organization(rt):
    """``verified_organization(admin_id, *more_admin_ids)``: a verified organisation, made in the
    database (its application and review have their own tests); returns its id."""
    import uuid

    from passport.clock import Clock
    from passport.realname.models import CONTACT_PHONE, LEGAL_REPRESENTATIVE, Document, Organization, OrganizationAdmin

    def make(admin_id: str, *others: str) -> str:
        now = Clock().now()
        with rt.db.write() as db:
            licence = Document(account_id=admin_id, kind="license", content_type="image/png", size=1,
                               sha256="0" * 64, stored_name=uuid.uuid4().hex, created_at=now)
            db.add(licence)
            db.flush()
            org_id = uuid.uuid4().hex
            org = Organization(id=org_id, name=f"测试组织{uuid.uuid4().hex[:6]}",
                               uscc="91110000" + uuid.uuid4().hex[:10].upper(),
                               legal_representative_enc=rt.keys.cipher.encrypt("法人", LEGAL_REPRESENTATIVE, org_id),
                               contact_phone_enc=rt.keys.cipher.encrypt("010-1", CONTACT_PHONE, org_id),
                               status="verified",
                               license_id=licence.id, created_by=admin_id, created_at=now)
            db.add(org)
            db.flush()
            accepted = {"accepted_at": now} if hasattr(OrganizationAdmin, "accepted_at") else {}
            for account_id in (admin_id, *others):
                db.add(OrganizationAdmin(organization_id=org.id, account_id=account_id, added_by=admin_id,
                                         created_at=now, **accepted))
        return org.id

    return make
