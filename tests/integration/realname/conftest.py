"""Helpers for the real-name tests: files, verified people (fresh valid ID numbers and USCCs are
passport_testing's new_id_number and new_uscc)."""

from __future__ import annotations

import pytest

from passport_testing import bearer, new_id_number, register_account

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0" + bytes(64)
PDF = b"%PDF-1.7\n" + bytes(64)
EXECUTABLE = b"MZ\x90\x00\x03" + bytes(64)  # a Windows executable, whatever its name says


def auth(done: dict) -> dict:
    return bearer(done["session"]["token"])


def claim_and_open(client, reviewer: dict, review_id: str) -> None:
    """What a reviewer does before deciding a real-name or organisation item (issue 15): claim it and
    open its document."""
    claimed = client.post(f"/api/v1/admin/reviews/{review_id}/claim", headers=reviewer["headers"])
    assert claimed.status_code == 200, claimed.text
    opened = client.get(f"/api/v1/admin/reviews/{review_id}/document", headers=reviewer["headers"])
    assert opened.status_code == 200, opened.text


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
