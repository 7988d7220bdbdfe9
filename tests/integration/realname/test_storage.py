"""A full dump of the database holds no real name, ID number, legal representative or contact phone
in clear (ARCHITECTURE "Storage", COMPLIANCE D5); and concurrent organisation changes stay consistent."""

from __future__ import annotations

import random
import threading

import httpx
from sqlalchemy import MetaData, select

from passport_testing import new_id_number, new_phone, new_uscc, register_account

from .conftest import PNG, auth


def rare_name() -> str:
    return "".join(chr(random.randrange(0x4E00, 0x9FA5)) for _ in range(4))


def dump(rt) -> str:
    """Every value of every row, text and bytes decoded as UTF-8 (and the bytes as hex too)."""
    metadata = MetaData()
    metadata.reflect(rt.db.engine)
    parts = []
    with rt.db.read() as db:
        for table in metadata.sorted_tables:
            for row in db.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value)
                        parts += [value.decode("utf-8", "replace"), value.hex()]
                    elif value is not None:
                        parts.append(str(value))
    return "\n".join(parts)


def test_no_personal_data_in_clear(client, rt, provider):
    provider("dev")
    person = register_account(client, rt)
    name, number, representative, contact = rare_name(), new_id_number(), rare_name(), new_phone()
    assert client.post("/api/v1/me/real-name", json={"name": name, "id_number": number},
                       headers=auth(person)).status_code == 200
    applied = client.post("/api/v1/organizations", headers=auth(person), files={"license": ("l.png", PNG, "image/png")},
                          data={"name": "某某文化传媒有限公司", "uscc": new_uscc(),
                                "legal_representative": representative, "contact_phone": contact})
    assert applied.status_code == 202
    everything = dump(rt)
    for secret in (name, number, number[6:14] + number[14:], representative, contact, contact[3:]):
        assert secret not in everything, secret
        assert secret.encode().hex() not in everything, secret
    assert "某某文化传媒有限公司" in everything  # the organisation name is public information


def test_two_administrators_removing_each_other_at_once_leave_one(live_server, rt, provider):
    provider("dev")
    with httpx.Client(base_url=live_server, timeout=30) as http:
        owner, colleague = register_account(http, rt), register_account(http, rt)
        assert http.post("/api/v1/me/real-name", json={"name": "张小三", "id_number": new_id_number()},
                         headers=auth(owner)).json()["status"] == "verified"
        org_id = http.post("/api/v1/organizations", headers=auth(owner), files={"license": ("l.png", PNG, "image/png")},
                           data={"name": "某某工作室", "uscc": new_uscc(), "legal_representative": "张小三",
                                 "contact_phone": "13800138000"}).json()["id"]
        url = f"/api/v1/organizations/{org_id}/administrators"
        assert http.post(url, json={"phone": colleague["phone"]}, headers=auth(owner)).status_code == 202
        assert http.post(f"{url}/accept", headers=auth(colleague)).status_code == 204
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def remove(actor, target):
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            codes.append(http.delete(f"{url}/{target['account']['id']}", headers=auth(actor)).status_code)

    threads = [threading.Thread(target=remove, args=pair) for pair in ((owner, colleague), (colleague, owner))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [204, 403] or sorted(codes) == [204, 409], codes
    with httpx.Client(base_url=live_server) as http:
        left = [http.get(url, headers=auth(p)).status_code for p in (owner, colleague)]
    assert sorted(left) == [200, 403]


def test_one_uscc_applied_for_twice_at_once_is_taken_once(live_server, rt, provider):
    provider("dev")
    code = new_uscc()
    with httpx.Client(base_url=live_server, timeout=30) as http:
        people = [register_account(http, rt) for _ in range(2)]
        for p in people:
            assert http.post("/api/v1/me/real-name", json={"name": "张小三", "id_number": new_id_number()},
                             headers=auth(p)).json()["status"] == "verified"
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def apply(person):
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            codes.append(http.post("/api/v1/organizations", headers=auth(person),
                                   files={"license": ("l.png", PNG, "image/png")},
                                   data={"name": "某某工作室", "uscc": code, "legal_representative": "张小三",
                                         "contact_phone": "13800138000"}).status_code)

    threads = [threading.Thread(target=apply, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [202, 409], codes
