"""Helpers for the real-name tests: fresh valid ID numbers and USCCs, files, verified people."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from passport.identity import resident_id, uscc
from passport_testing import bearer, register_account

REGIONS = ("110105", "310104", "440305", "510107", "650102", "810000", "330106")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0" + bytes(64)
PDF = b"%PDF-1.7\n" + bytes(64)
EXECUTABLE = b"MZ\x90\x00\x03" + bytes(64)  # a Windows executable, whatever its name says


def new_id_number(born: date | None = None, region: str | None = None) -> str:
    born = born or date(1960, 1, 1) + timedelta(days=random.randrange(40 * 365))
    body = f"{region or random.choice(REGIONS)}{born:%Y%m%d}{random.randrange(1, 1000):03d}"
    return body + resident_id.check_character(body)


def new_uscc() -> str:
    body = "91" + random.choice(("110000", "310115", "440300")) + "".join(
        random.choice(uscc.ALPHABET) for _ in range(9))
    return body + uscc.check_character(body)


def auth(done: dict) -> dict:
    return bearer(done["session"]["token"])


@pytest.fixture()
def provider(rt, monkeypatch):
    """Switch the real-name provider for one test: ``provider("dev")``."""

    def use(name: str, **values) -> None:
        monkeypatch.setattr(rt.settings, "realname_provider", name)
        for key, value in values.items():
            monkeypatch.setattr(rt.settings, key, value)

    return use


def verified_person(client, rt, provider, name: str = "张小三") -> dict:
    provider("dev")
    done = register_account(client, rt)
    number = new_id_number()
    answer = client.post("/api/v1/me/real-name", json={"name": name, "id_number": number}, headers=auth(done))
    assert answer.status_code == 200 and answer.json()["status"] == "verified", answer.text
    return done | {"id_number": number, "real_name": name}
