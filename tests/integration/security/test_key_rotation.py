"""Key rotation (issue 15): ``passport keys rotate`` moves every encrypted value to the active
encryption key in the row-bound format and every blind index to the current blind-index key while
requests run; afterwards the old keys can go and everything still decrypts and is found.

Each test gets its own database (a new SQLite file, or a new PostgreSQL database beside the shared
test one), since it changes the keys every row is encrypted with.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text, update
from typer.testing import CliRunner

from passport.accounts import service as accounts
from passport.accounts.models import EMAIL, ID_NUMBER, PHONE, REAL_NAME, Account
from passport.admin import keys
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.credentials import codes
from passport.credentials import email as email_binding
from passport.db import new_id
from passport.identity.email import email_key
from passport.notify import outbox
from passport.notify.models import RECIPIENT, OutboxNotice
from passport.realname import documents
from passport.realname.models import DOCUMENT_FILE, Document
from passport.realname.person import holders_of
from passport.security.crypto import SEALED
from passport_testing import (
    DATABASE_URL,
    STRONG_PASSWORD,
    bearer,
    last_code,
    login,
    login_with_code,
    make_settings,
    new_id_number,
    new_phone,
    publish_agreements,
)

CLI = Origin(channel="cli")


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


E1, E2 = f"k1:{_key()}", f"k2:{_key()}"
B1, B2 = _key(), _key()
S1, S2 = _key(), _key()
OLD = {"encryption_keys": E1, "blind_index_key": B1, "secret_key": S1}
ROTATING = {"encryption_keys": f"{E2},{E1}", "blind_index_key": f"{B2},{B1}", "secret_key": f"{S2},{S1}"}
NEW = {"encryption_keys": E2, "blind_index_key": B2, "secret_key": S2}


@pytest.fixture()
def database(tmp_path):
    """A database of this test's own: SQLite under tmp_path, or a new PostgreSQL database."""
    if not DATABASE_URL:
        yield None
        return
    name = f"keys_{uuid.uuid4().hex[:12]}"
    admin = create_engine(DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture()
def runtimes(tmp_path, database):
    """``runtime(keys)`` builds a runtime over the one database with these keys (closed at the end)."""
    from passport.db import migrate
    from passport.runtime import build_runtime

    built = []

    def runtime(key_settings: dict):
        settings = make_settings(tmp_path, database_url=database, realname_provider="dev", **key_settings)
        if not built:
            migrate(settings.resolved_database_url)
        rt = build_runtime(settings, pool_size=4)
        built.append(rt)
        return rt

    yield runtime
    for rt in built:
        rt.close()


@contextmanager
def client_of(rt):
    from passport.app import create_app

    with TestClient(create_app(runtime=rt)) as client:
        yield client


def _legacy(key_spec: str, plaintext: str, legacy_name: str) -> bytes:
    """A version 1 ciphertext, as stored before row binding (associated data: the field name only)."""
    kid, _, b64 = key_spec.partition(":")
    nonce = os.urandom(12)
    sealed = AESGCM(base64.b64decode(b64)).encrypt(nonce, plaintext.encode(), legacy_name.encode())
    return bytes([1, len(kid)]) + kid.encode() + nonce + sealed


def populate(rt, client, count: int = 12) -> list[dict]:
    """Accounts with a phone, an email, a real name and ID number, half of them in the version 1
    format (as rows written before row binding are); one notice in the outbox each; one document."""
    password_hash = rt.hasher.hash(STRONG_PASSWORD)
    people = []
    now = rt.clock.now()
    with rt.db.write() as db:
        for i in range(count):
            account_id, phone = new_id(), "+86" + new_phone()
            address, number = f"Rot-{uuid.uuid4().hex[:8]}@Example.com", new_id_number()
            legacy = i % 2 == 0
            seal = ((lambda value, field, _id=account_id: _legacy(E1, value, field.legacy)) if legacy
                    else (lambda value, field, _id=account_id: rt.keys.cipher.encrypt(value, field, _id)))
            db.add(Account(
                id=account_id, nickname=f"rot{i}", created_at=now, updated_at=now, password_hash=password_hash,
                phone_enc=seal(phone, PHONE), phone_bidx=rt.keys.blind_index("phone", phone),
                email_enc=seal(address, EMAIL), email_bidx=rt.keys.blind_index("email", email_key(address)),
                real_name_status="verified", real_name_enc=seal("张三", REAL_NAME),
                id_number_enc=seal(number, ID_NUMBER), id_number_bidx=rt.keys.blind_index("id_number", number)))
            people.append({"id": account_id, "phone": phone, "email": address, "id_number": number})
    for person in people:
        with rt.db.write() as db:
            outbox.notify_account(rt, db, account_id=person["id"], template="password_changed",
                                  params={"time": "now"}, channels=("sms",))
    upload = documents.Upload(b"\x89PNG\r\n\x1a\n" + os.urandom(64), "id.png")
    stored = documents.write_file(rt, upload, "image/png", [])
    with rt.db.write() as db:
        people[0]["document"] = documents.add_document(db, people[0]["id"], "id_document", stored, now).id
    return people


def everything_decrypts(rt) -> int:
    """Every encrypted value and sealed file in the database, decrypted with rt's keys; how many."""
    count = 0
    for plan in keys.plans():
        with rt.db.read() as db:
            rows = db.execute(select(*plan.read)).all()
        for row in rows:
            for column in plan.sealed:
                if getattr(row, column.name) is not None:
                    rt.keys.cipher.decrypt(getattr(row, column.name), keys.field_of(column, row),
                                           getattr(row, plan.key.name))
                    count += 1
    with rt.db.read() as db:
        for document in db.scalars(select(Document)).all():
            documents.read_document(rt, document)
            count += 1
    return count


def found_by_every_index(rt, people: list[dict]) -> None:
    with rt.db.read() as db:
        for person in people:
            assert accounts.find(db, accounts.sms_target(rt, person["phone"])).id == person["id"]
            assert accounts.find(db, accounts.email_target(rt, person["email"].upper())).id == person["id"]
            lookup = rt.keys.blind_index.lookup("id_number", person["id_number"])
            assert holders_of(db, lookup, "nobody") == 1


def test_every_model_column_holding_ciphertexts_or_blind_indexes_is_found_by_the_rotation():
    """A new ``*_enc`` or ``*_bidx`` column without its info would never be rotated (a code keeps the
    digest it was sent under: ``verification_codes.target_bidx`` is the one exception)."""
    from passport.db import Base, import_models

    import_models()
    declared = {f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables for c in t.columns
                if c.name.endswith(("_enc", "_bidx")) and f"{t.name}.{c.name}" != "verification_codes.target_bidx"}
    planned = {f"{p.table.name}.{c.name}" for p in keys.plans() for c in (*p.sealed, *p.indexed)}
    assert declared == planned
    assert "realname_documents.stored_name" in {f"{p.table.name}.{c.name}" for p in keys.plans() for c in p.files}
    for plan in keys.plans():
        for column in plan.sealed:
            spec = column.info[SEALED]
            for field in spec[1].values() if isinstance(spec, tuple) else (spec,):
                assert (field.table, field.column) == (plan.table.name, column.name)


def test_rotation_while_requests_run_then_the_old_keys_go(runtimes):
    old = runtimes(OLD)
    with client_of(old) as client:
        publish_agreements(old)
        people = populate(old, client)
        login(client, people[1]["phone"][3:], status=201)

    rotating = runtimes(ROTATING)
    errors: list[str] = []
    started, done = threading.Event(), threading.Event()
    served = {"logins": 0, "reads": 0, "writes": 0, "during": 0}

    def traffic(client) -> None:
        i = 0
        while not done.is_set() or i < len(people):
            person = people[i % len(people)]
            i += 1
            answer = login(client, person["phone"][3:] if i % 2 else person["email"])
            started.set()
            served["during"] += not done.is_set()
            if answer.status_code != 201:
                errors.append(f"login {answer.status_code} {answer.text}")
                continue
            served["logins"] += 1
            token = answer.json()["token"]
            me = client.get("/api/v1/me", headers=bearer(token))
            if me.status_code != 200 or me.json()["phone"] is None or me.json()["email"] is None:
                errors.append(f"read {me.status_code} {me.text}")
            served["reads"] += 1
            wrote = client.patch("/api/v1/me", json={"nickname": f"n{i}"}, headers=bearer(token))
            if wrote.status_code != 200:
                errors.append(f"write {wrote.status_code} {wrote.text}")
            # A write of encrypted columns and a blind index: a pending email address.
            email_binding.request_email(rotating, CLI, person["id"], email=f"pending-{i}@example.com")
            person["pending"] = f"pending-{i}@example.com"
            served["writes"] += 1

    with client_of(rotating) as client:
        worker = threading.Thread(target=traffic, args=(client,))
        worker.start()
        try:
            started.wait(30)
            # Small batches with a pause between them: the rotation spans many requests.
            report = keys.rotate(rotating, CLI, batch_size=3, on_batch=lambda table, rows: time.sleep(0.25))
        finally:
            done.set()
            worker.join(120)
    assert not errors, errors[:5]
    assert served["logins"] >= len(people) and served["writes"] >= len(people)
    assert served["during"] >= 5, served  # requests ran while the rotation did
    assert report["done"], report
    assert report["remaining_by_key"] == {} and report["legacy_format"] == 0
    assert set(report["values_by_key"]) == {"k2"}
    assert report["rewritten"]["accounts.phone_enc"] >= len(people)
    assert report["rewritten"]["accounts.phone_bidx"] >= len(people)
    assert report["rewritten"]["realname_documents.stored_name (file)"] == 1
    assert keys.status(rotating)["done"]

    new = runtimes(NEW)
    assert everything_decrypts(new) >= 4 * len(people) + len(people) + 1
    found_by_every_index(new, people)
    with new.db.read() as db:
        for person in people:
            # The address waiting for its proof is sealed on its code row, looked up under the new keys.
            pending = codes.pending_email(new, db, person["id"])
            assert pending is not None and pending.value == person["pending"]
            assert pending.bidx == new.keys.blind_index("email", email_key(person["pending"]))
    with client_of(new) as client:
        for person in people:
            login(client, person["phone"][3:], status=201)
            login(client, person["email"], status=201)
    with pytest.raises(Exception):  # noqa: B017 - the old key alone decrypts nothing any more
        everything_decrypts(runtimes(OLD))
    with new.db.read() as db:
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "keys.rotated")).one()
    assert event.result == "ok" and '"completed": true' in event.details
    for person in people:
        for value in (person["phone"], person["email"], person["id_number"]):
            assert value not in event.details


def test_a_ciphertext_copied_to_another_row_or_column_does_not_decrypt(runtimes):
    rt = runtimes(OLD)
    with client_of(rt) as client:
        publish_agreements(rt)
        first, second = populate(rt, client, count=2)[1:2] + populate(rt, client, count=2)[1:2]
    with rt.db.write() as db:
        stolen = db.get(Account, first["id"]).phone_enc
        db.execute(update(Account).where(Account.id == second["id"]).values(phone_enc=stolen))
    with rt.db.read() as db:
        moved = db.get(Account, second["id"])
        with pytest.raises(InvalidTag):
            rt.keys.cipher.decrypt(moved.phone_enc, PHONE, moved.id)
        with pytest.raises(InvalidTag):  # another column of the same row
            rt.keys.cipher.decrypt(db.get(Account, first["id"]).phone_enc, EMAIL, first["id"])
        assert rt.keys.cipher.decrypt(stolen, PHONE, first["id"]) == first["phone"]


def test_a_legacy_value_copied_to_another_row_decrypts_until_the_rotation_binds_it(runtimes):
    rt = runtimes(OLD)
    with client_of(rt) as client:
        publish_agreements(rt)
        people = populate(rt, client, count=4)
    legacy = people[0]  # even rows are in the version 1 format
    with rt.db.read() as db:
        blob = db.get(Account, legacy["id"]).phone_enc
    assert blob[0] == 1
    assert rt.keys.cipher.decrypt(blob, PHONE, people[1]["id"]) == legacy["phone"]  # not bound to a row yet
    keys.rotate(rt, CLI)
    with rt.db.read() as db:
        bound = db.get(Account, legacy["id"]).phone_enc
    assert bound[0] == 2 and rt.keys.cipher.decrypt(bound, PHONE, legacy["id"]) == legacy["phone"]
    with pytest.raises(InvalidTag):
        rt.keys.cipher.decrypt(bound, PHONE, people[1]["id"])


def test_an_interrupted_rotation_continues_where_it_stopped(runtimes):
    old = runtimes(OLD)
    with client_of(old) as client:
        publish_agreements(old)
        people = populate(old, client, count=10)
    rotating = runtimes(ROTATING)
    batches = []

    def stop_after_two(table: str, rows: int) -> None:
        batches.append(table)
        if len(batches) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keys.rotate(rotating, CLI, batch_size=4, on_batch=stop_after_two)
    halfway = keys.status(rotating)
    assert not halfway["done"]
    assert halfway["values_by_key"]["k2"] > 0 and halfway["remaining_by_key"]["k1"] > 0
    assert halfway["blind_indexes"]["current"] > 0 and halfway["blind_indexes"]["previous"] > 0
    with client_of(rotating) as client:  # half-rotated: everyone still logs in
        for person in people:
            login(client, person["phone"][3:], status=201)
    found_by_every_index(rotating, people)

    again = keys.rotate(rotating, CLI, batch_size=4)
    assert again["done"], again
    assert keys.rotate(rotating, CLI)["rewritten"] == {}  # a third run finds nothing to do
    new = runtimes(NEW)
    everything_decrypts(new)
    found_by_every_index(new, people)
    with new.db.read() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "keys.rotated")
                            .order_by(AuditEvent.seq)).all()
    assert [e.result for e in events] == ["failed", "ok", "ok"]
    assert '"completed": false' in events[0].details


def test_blind_index_rotation_keeps_phone_logins_and_codes_working(runtimes):
    old = runtimes(OLD)
    with client_of(old) as client:
        publish_agreements(old)
        people = populate(old, client, count=6)
        for person in people:  # before
            login(client, person["phone"][3:], status=201)
        # A login code sent just before the keys change: blind index B1, hashed with S1.
        phone = people[0]["phone"][3:]
        assert client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "login"}).status_code == 202
        code = last_code(old, phone, "login")
        link = outbox.unsubscribe_token(old, people[0]["id"])
    rotating = runtimes(ROTATING)
    with client_of(rotating) as client:  # during: nothing rotated yet
        assert login_with_code(client, phone, code).status_code == 201
        for person in people:
            login(client, person["phone"][3:], status=201)
        assert outbox.account_of_unsubscribe_token(rotating, link) == people[0]["id"]
        keys.rotate(rotating, CLI)
        for person in people:  # after the rotation, old keys still configured
            login(client, person["phone"][3:], status=201)
    new = runtimes(NEW)
    with client_of(new) as client:  # after: old keys gone
        for person in people:
            login(client, person["phone"][3:], status=201)
    with pytest.raises(Exception, match="not valid"):  # the previous secret went with the rotation's end
        outbox.account_of_unsubscribe_token(new, link)


def test_cli_status_and_rotate(runtimes, tmp_path, database, monkeypatch):
    from passport.cli import app as cli

    old = runtimes(OLD)
    with client_of(old) as client:
        publish_agreements(old)
        people = populate(old, client, count=3)
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PASSPORT_DATABASE_URL", database or old.settings.resolved_database_url)
    for name, value in ROTATING.items():
        monkeypatch.setenv(f"PASSPORT_{name.upper()}", value)
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)

    before = CliRunner().invoke(cli, ["keys", "status"])
    assert before.exit_code == 1 and '"k1"' in before.output
    rotated = CliRunner().invoke(cli, ["keys", "rotate", "--batch", "2"])
    assert rotated.exit_code == 0, rotated.output
    after = CliRunner().invoke(cli, ["keys", "status"])
    assert after.exit_code == 0 and '"remaining_by_key": {}' in after.output
    for output in (before.output, rotated.output, after.output):
        for person in people:
            assert person["phone"] not in output and person["email"] not in output


def test_outbox_recipients_are_bound_to_their_row(runtimes):
    rt = runtimes(OLD)
    with client_of(rt) as client:
        publish_agreements(rt)
        populate(rt, client, count=2)
    with rt.db.read() as db:
        first, second = db.scalars(select(OutboxNotice).order_by(OutboxNotice.id).limit(2)).all()
    assert rt.keys.cipher.decrypt(first.recipient_enc, RECIPIENT["sms"], first.id).startswith("+86")
    with pytest.raises(InvalidTag):
        rt.keys.cipher.decrypt(first.recipient_enc, RECIPIENT["sms"], second.id)
    assert DOCUMENT_FILE.table == "realname_documents"
