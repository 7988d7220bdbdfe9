"""The audit log: one ``record`` call per state change, in the same transaction as the change."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import LargeBinary, Text, bindparam, cast, delete, func, insert, literal_column, select, true, update
from sqlalchemy.orm import Session

from passport.audit.models import AuditChainHead, AuditEvent
from passport.clock import rfc3339
from passport.identity.masking import mask_mapping
from passport.origin import Origin  # services name it audit.Origin
from passport.security.crypto import MacKeyring
from passport.security.keys import AUDIT_KEYS

GENESIS = "0" * 64


_FIELDS = ("seq", "at", "actor_type", "actor_id", "subject_type", "subject_id", "action", "result", "ip",
           "user_agent", "details", "prev_hash")
_events = AuditEvent.__table__
_head = AuditChainHead.__table__
_LAST = select(_events.c.seq, _events.c.hash).order_by(_events.c.seq.desc()).limit(1)
# The head row orders appends. On PostgreSQL, FOR UPDATE waits for the appender before us and then
# reads the row as it committed it; the event and the moved head go in one statement. SQLite
# writers are serial (BEGIN IMMEDIATE), so plain statements do.
_HEAD = select(_head.c.seq, _head.c.hash, _head.c.mac).where(_head.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_INSERT = insert(_events)
_MOVE_HEAD = update(_head).where(_head.c.id == 1).values(seq=bindparam("seq"), hash=bindparam("hash"),
                                                         mac=bindparam("mac"))
_APPEND = _MOVE_HEAD.add_cte(insert(_events).values(
    {column.name: bindparam(column.name, type_=column.type) for column in _events.c}).cte("appended"))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(event) -> bytes:
    """The bytes the hash covers: every field but the hash, as sorted compact JSON."""
    fields = {name: getattr(event, name) if isinstance(event, AuditEvent) else event[name] for name in _FIELDS}
    fields["at"] = rfc3339(fields["at"])
    return _json(fields).encode()


def _postgres(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


# --- the keyed chain -----------------------------------------------------------------------------
#
# The hash chain alone proves nothing to someone who can write to the database: they can change a
# record, recompute every later hash and move the head. So each record also carries the id of the
# audit key it was signed with and a MAC:
#
#     record_key = HMAC(audit key[key_id], "passport audit record v1\n" + key_id + "\n" + content)
#     mac        = HMAC(record_key, previous link + hash)
#
# where ``content`` is the record's canonical bytes with its place in the chain blanked (prev_hash
# "", seq 0: ``content``), ``hash`` is the SHA-256 above (which covers the content, seq and prev_hash), and the
# previous link is the previous record's MAC (its hash if it is a legacy record written before the
# keys, GENESIS for the first). So the MAC covers the previous MAC and the whole record, and only a
# holder of the key can make one. The two steps let PostgreSQL finish the MAC inside the login's
# one statement (``appending_after``), where only it knows the previous link, without the audit key
# ever reaching the database: it receives the one record's key (as HMAC pads), good for that
# content only.

_RECORD_KEY_LABEL = b"passport audit record v1\n"
_ANCHOR_LABEL = b"passport audit anchor v1\n"
_CONTENT = ("at", "actor_type", "actor_id", "subject_type", "subject_id", "action", "result", "ip",
            "user_agent", "details")
_BLANK_PLACE = {"prev_hash": "", "seq": 0}
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def audit_keys(db: Session) -> MacKeyring:
    """The audit keys the runtime's sessions carry (``Session.info``)."""
    keys = db.info.get(AUDIT_KEYS)
    if keys is None:
        raise RuntimeError("this database session carries no audit keys: open it with the runtime's db")
    return keys


def content(event) -> bytes:
    """A record's canonical bytes without its place in the chain (prev_hash "", seq 0); from the
    pieces of ``canonical_parts`` it is ``c1 + c2 + "0" + c3``."""
    return canonical({name: event[name] for name in _CONTENT} | _BLANK_PLACE)


def record_key(key: bytes, key_id: str, content_bytes: bytes) -> bytes:
    """The HMAC key of one record: the audit key applied to the key id and the record's ``content``."""
    return hmac.digest(key, _RECORD_KEY_LABEL + key_id.encode() + b"\n" + content_bytes, "sha256")


def record_mac(key: bytes, prev_link: str, hash_: str) -> str:
    """A record's MAC under its ``record_key``: the previous link and its hash."""
    return hmac.new(key, (prev_link + hash_).encode(), "sha256").hexdigest()


def _link(event) -> str:
    """What the next record's MAC covers of this one: its MAC, or its hash if it is a legacy record."""
    return event["mac"] or event["hash"]


def record(db: Session, *, at: datetime, action: str, origin: Origin, result: str = "ok",
           actor_type: str = "anonymous", actor_id: str | None = None, subject_type: str | None = None,
           subject_id: str | None = None, details: dict[str, Any] | None = None) -> dict:
    """Append one event to the chain, in the caller's transaction, signed with the current audit key.
    Returns the row as written."""
    keys = audit_keys(db)
    postgres = _postgres(db)
    last = db.execute(_HEAD_LOCKED if postgres else _HEAD).one()
    row = _event(at=at, action=action, origin=origin, result=result, actor_type=actor_type, actor_id=actor_id,
                 subject_type=subject_type, subject_id=subject_id, details=details)
    row["seq"], row["prev_hash"] = last.seq + 1, last.hash
    row["hash"] = hashlib.sha256(canonical(row)).hexdigest()
    row["key_id"] = keys.current_kid
    row["mac"] = record_mac(record_key(keys.current, keys.current_kid, content(row)), last.mac or last.hash,
                            row["hash"])
    if postgres:
        db.execute(_APPEND, row)
    else:
        db.execute(_INSERT, row)
        db.execute(_MOVE_HEAD, {"seq": row["seq"], "hash": row["hash"], "mac": row["mac"]})
    return row


def _event(*, at: datetime, action: str, origin: Origin, result: str, actor_type: str, actor_id: str | None,
           subject_type: str | None, subject_id: str | None, details: dict[str, Any] | None) -> dict:
    """An event's fields but its place in the chain (seq, prev_hash, hash)."""
    return {
        "at": at, "actor_type": actor_type, "actor_id": actor_id, "subject_type": subject_type,
        "subject_id": subject_id, "action": action, "result": result, "ip": origin.ip,
        "user_agent": (origin.user_agent or "")[:512] or None,
        "details": json.dumps(mask_mapping(details or {}) | {"channel": origin.channel},
                              sort_keys=True, ensure_ascii=False),
    }


# --- appending inside another statement (PostgreSQL) -------------------------------------------------
#
# A hot path that changes one thing and records it (a login: start a session, append
# login.succeeded) can do both in ONE autocommit statement: no BEGIN, no COMMIT, no separate head
# read, and the head stays locked for that one statement only. PostgreSQL then computes the hash,
# because only it knows the head's seq and hash at that moment. The bytes it hashes are exactly
# ``canonical``'s: the sorted JSON splits around the two values it fills in, prev_hash and seq
# (keys sort as ... ip < prev_hash < result < seq < subject_id ...), so ``verify`` needs no
# second definition. The MAC it finishes the same way: the record key (``record_key``, made here
# from the content alone) comes as HMAC's inner and outer pads, and PostgreSQL hashes them around
# the previous link and the new hash (HMAC-SHA256 spelled out with its built-in sha256).

_BEFORE_PREV = ("action", "actor_id", "actor_type", "at", "details", "ip")
_AFTER_SEQ = ("subject_id", "subject_type", "user_agent")


def canonical_parts(row: dict) -> tuple[str, str, str]:
    """(c1, c2, c3) with ``canonical(row) == (c1 + prev_hash + c2 + str(seq) + c3).encode()``."""
    head = {name: row[name] for name in _BEFORE_PREV} | {"at": rfc3339(row["at"])}
    tail = {name: row[name] for name in _AFTER_SEQ}
    return (_json(head)[:-1] + ',"prev_hash":"', '","result":' + _json(row["result"]) + ',"seq":',
            "," + _json(tail)[1:])


_PARAM_FIELDS = _CONTENT


def appending_after(gate) -> Any:
    """A statement that appends one event if and only if the CTE ``gate`` yields a row, and moves the
    head; it returns the new head seq (no row: nothing appended). Bind its event with ``append_params``.
    The head is read ``FOR UPDATE``: a concurrent appender's row is waited for and then read as it
    committed it, as in ``record``."""
    head = _HEAD_LOCKED.cte("chain_head")
    seq = head.c.seq + 1
    hashed = (bindparam("a_c1", type_=Text) + head.c.hash + bindparam("a_c2", type_=Text) + cast(seq, Text)
              + bindparam("a_c3", type_=Text))
    linked = select(seq.label("seq"), head.c.hash.label("prev_hash"),
                    func.coalesce(head.c.mac, head.c.hash).label("prev_link"),
                    _hex_sha256(func.convert_to(hashed, literal_column("'UTF8'"))).label("hash")
                    ).select_from(head.join(gate, true())).cte("linked")
    inner = func.sha256(bindparam("a_ipad", type_=LargeBinary).op("||")(
        func.convert_to(linked.c.prev_link + linked.c.hash, literal_column("'UTF8'"))))
    mac = _hex_sha256(bindparam("a_opad", type_=LargeBinary).op("||")(inner))
    names = ["seq", *_PARAM_FIELDS, "prev_hash", "hash", "key_id", "mac"]
    values = [linked.c.seq, *(bindparam(f"a_{name}", type_=_events.c[name].type) for name in _PARAM_FIELDS),
              linked.c.prev_hash, linked.c.hash, bindparam("a_key_id", type_=_events.c.key_id.type), mac]
    appended = (insert(_events).from_select(names, select(*values).select_from(linked))
                .returning(_events.c.seq, _events.c.hash, _events.c.mac).cte("appended"))
    return (update(_head).where(_head.c.id == 1, appended.c.seq > _head.c.seq)
            .values(seq=appended.c.seq, hash=appended.c.hash, mac=appended.c.mac).returning(_head.c.seq))


def _hex_sha256(data) -> Any:
    return func.encode(func.sha256(data), literal_column("'hex'"), type_=Text)


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer pads of a 32-byte key."""
    block = key.ljust(64, b"\0")
    return block.translate(_IPAD), block.translate(_OPAD)


def append_params(keys: MacKeyring, *, at: datetime, action: str, origin: Origin, result: str = "ok",
                  actor_type: str = "anonymous", actor_id: str | None = None, subject_type: str | None = None,
                  subject_id: str | None = None, details: dict[str, Any] | None = None) -> dict:
    """The bind parameters of an ``appending_after`` statement for one event (``record``'s arguments),
    signed with the current key of ``keys``: the record's own key goes as HMAC pads, never the audit key."""
    row = _event(at=at, action=action, origin=origin, result=result, actor_type=actor_type, actor_id=actor_id,
                 subject_type=subject_type, subject_id=subject_id, details=details)
    c1, c2, c3 = canonical_parts(row)
    ipad, opad = _pads(record_key(keys.current, keys.current_kid, (c1 + c2 + "0" + c3).encode()))
    return ({f"a_{name}": row[name] for name in _PARAM_FIELDS}
            | {"a_c1": c1, "a_c2": c2, "a_c3": c3, "a_key_id": keys.current_kid, "a_ipad": ipad, "a_opad": opad})


def activity_of(db: Session, account_id: str, *, before: int | None = None, limit: int = 50) -> list[dict]:
    """The account's trail as staff see it, newest first: what it did and what was done to it, with
    who did it. The account holder sees it only through ``user_view`` (``user_activity``).
    Page with ``before`` = the smallest ``seq`` of the previous page."""
    condition = (_events.c.actor_id == account_id) | (
        (_events.c.subject_type == "account") & (_events.c.subject_id == account_id))
    if before is not None:
        condition &= _events.c.seq < before
    rows = db.execute(select(_events.c.seq, _events.c.at, _events.c.action, _events.c.result, _events.c.actor_type,
                             _events.c.actor_id, _events.c.ip, _events.c.user_agent, _events.c.details)
                      .where(condition).order_by(_events.c.seq.desc()).limit(max(1, min(limit, 200)))).all()
    return [{"seq": r.seq, "at": rfc3339(r.at), "action": r.action, "result": r.result, "actor_type": r.actor_type,
             "actor_id": r.actor_id, "ip": r.ip, "user_agent": r.user_agent, "details": json.loads(r.details)}
            for r in rows]


# Actions whose ``reason`` the user was told (the notice of a staff action, a revoked or refused
# real-name verification): the only reasons of others the holder's view shows. Any other reason of
# staff (a reveal's, a review note) is internal.
PUBLIC_REASON_ACTIONS = ("account.action.", "realname.revoked", "realname.rejected")
_ACTOR_KINDS = {"staff": "staff", "system": "system"}


def user_view(event: dict, account_id: str) -> dict:
    """How the account holder sees one event of its trail: the activity API and page and the
    personal-data export all show this, so they cannot drift. What the account did itself is whole
    (``actor`` "self", its IP, browser and masked details). What others did (staff, the system,
    someone trying its login) is theirs in part: only the action, its time, its result, the kind of
    actor ("staff", "system", "other": never an id, login, IP or browser) and a reason the user was
    told; a staff member's internal reason is never shown."""
    base = {"seq": event["seq"], "at": event["at"], "action": event["action"], "result": event["result"]}
    if event["actor_type"] == "user" and event["actor_id"] == account_id:
        return base | {"actor": "self", "ip": event["ip"], "user_agent": event["user_agent"],
                       "details": event["details"]}
    reason = (event.get("details") or {}).get("reason")
    if not isinstance(reason, str) or (event["actor_type"] == "staff"
                                       and not event["action"].startswith(PUBLIC_REASON_ACTIONS)):
        reason = None
    return base | {"actor": _ACTOR_KINDS.get(event["actor_type"], "other"), "reason": reason}


def user_activity(db: Session, account_id: str, *, before: int | None = None, limit: int = 50) -> list[dict]:
    """The account's own trail as its holder sees it (``user_view`` of each event), newest first
    (COMPLIANCE C3). Page with ``before`` = the smallest ``seq`` of the previous page."""
    return [user_view(event, account_id) for event in activity_of(db, account_id, before=before, limit=limit)]


CHECKPOINT = "audit.retention_checkpoint"
ANCHORED = "audit.anchored"


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found: ``first_bad`` is the seq of the first record that does not fit the
    chain (for a deleted record: the one after the gap) and ``reason`` says why. ``legacy_until``:
    the newest of the records written before the audit keys (hash only, no MAC), if any remain;
    ``anchors``: how many anchors were checked."""

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str | None = None
    legacy_until: int | None = None
    anchors: int = 0


def _checkpoint_links(db: Session) -> dict[tuple[int, str], str]:
    """(last removed seq, its hash) → its link (MAC, or hash if it was a legacy record) of every
    retention checkpoint still in the chain."""
    links = {}
    for details in db.scalars(select(_events.c.details).where(_events.c.action == CHECKPOINT)):
        data = json.loads(details)
        seq, hash_, mac = data.get("last_removed_seq"), data.get("last_removed_hash"), data.get("last_removed_mac")
        if isinstance(seq, int) and isinstance(hash_, str):
            links[(seq, hash_)] = mac if isinstance(mac, str) else hash_
    return links


def _bad(checked: int, seq: int, reason: str, legacy_until: int | None, anchors: int = 0) -> ChainReport:
    return ChainReport(False, checked, seq, reason, legacy_until, anchors)


def verify(db: Session, batch: int = 2000, *, anchors: Sequence[dict] = ()) -> ChainReport:
    """Recompute every hash and MAC in seq order, streaming ``batch`` rows at a time. The first
    remaining record may start after genesis only where a retention checkpoint names the record
    before it and that record's hash; any other break (edited row, deleted row, broken link, a MAC
    that does not match, a key id that is not configured, a record without MAC after the keyed
    records began) is reported, and so is a chain that stops short of the head (its newest records
    removed).

    ``anchors`` (see ``make_anchor``, read with ``parse_anchor``) are checked too: each must be signed
    with a configured key, and the record it names must still be there with the anchored MAC (the
    rest of the walk shows the chain still extends from it); an anchored record that is gone is a
    truncation unless a retention checkpoint in the chain removed it.

    The head is read first: records appended while this runs lie beyond it and are left for the
    next check."""
    keys = audit_keys(db)
    pinned: dict[int, dict] = {}
    for anchor in sorted(anchors, key=lambda a: a["seq"]):
        problem = anchor_problem(keys, anchor)
        if problem:
            return _bad(0, anchor["seq"], f"anchor of record {anchor['seq']}: {problem}", None)
        pinned.setdefault(anchor["seq"], anchor)
        if pinned[anchor["seq"]]["mac"] != anchor["mac"]:
            return _bad(0, anchor["seq"], f"two anchors of record {anchor['seq']} disagree", None)
    head = db.execute(_HEAD).one()
    expected_seq, prev, prev_link, checked = None, GENESIS, GENESIS, 0
    legacy_until = keyed_from = None
    removed_upto = 0  # the newest seq a verified retention checkpoint removed
    rows = db.execute(select(_events).where(_events.c.seq <= head.seq).order_by(_events.c.seq)
                      .execution_options(yield_per=batch))
    for row in rows:
        event = row._mapping
        if expected_seq is None:
            if event["seq"] == 1 and event["prev_hash"] == GENESIS:
                prev_link = GENESIS
            else:
                prev_link = _checkpoint_links(db).get((event["seq"] - 1, event["prev_hash"]))
                if prev_link is None:
                    return _bad(checked, event["seq"], "the first record neither starts the chain nor follows a "
                                                       "retention checkpoint", legacy_until)
        elif event["seq"] != expected_seq:
            missing = f"{expected_seq}" if event["seq"] == expected_seq + 1 else f"{expected_seq}-{event['seq'] - 1}"
            return _bad(checked, event["seq"], f"gap in seq: record {missing} missing", legacy_until)
        elif event["prev_hash"] != prev:
            return _bad(checked, event["seq"], "broken link: prev_hash is not the previous record's hash", legacy_until)
        if hashlib.sha256(canonical(event)).hexdigest() != event["hash"]:
            return _bad(checked, event["seq"], "hash mismatch: the record was changed", legacy_until)
        if event["mac"] is None and event["key_id"] is None:
            if keyed_from is not None:
                return _bad(checked, event["seq"], f"record without MAC after the keyed records began (seq "
                                                   f"{keyed_from}): the chain was rewritten", legacy_until)
            legacy_until = event["seq"]
        else:
            key = keys.key(event["key_id"])
            if key is None:
                return _bad(checked, event["seq"], f"record signed with audit key {event['key_id']!r}, which is not "
                                                   f"configured (PASSPORT_AUDIT_KEYS)", legacy_until)
            mac = record_mac(record_key(key, event["key_id"], content(event)), prev_link, event["hash"])
            if not hmac.compare_digest(mac, event["mac"] or ""):
                return _bad(checked, event["seq"], "MAC mismatch: the record was changed or the chain rewritten "
                                                   "without the audit key", legacy_until)
            keyed_from = keyed_from or event["seq"]
        anchor = pinned.get(event["seq"])
        if anchor is not None and not hmac.compare_digest(anchor["mac"], _link(event)):
            return _bad(checked, event["seq"], f"record differs from its anchor of {anchor['at']}: the chain was "
                                               "rewritten", legacy_until)
        if event["action"] == CHECKPOINT:
            removed_upto = max(removed_upto, json.loads(event["details"]).get("last_removed_seq") or 0)
        expected_seq, prev, prev_link, checked = event["seq"] + 1, event["hash"], _link(event), checked + 1
    newest = (expected_seq - 1) if expected_seq is not None else 0
    if head.seq and (newest, prev, prev_link) != (head.seq, head.hash, head.mac or head.hash):
        return _bad(checked, newest + 1, f"records {newest + 1}-{head.seq} missing: the chain head names record "
                                         f"{head.seq}" if newest < head.seq else
                                         "the chain head does not match the newest record", legacy_until)
    first = newest - checked + 1
    if checked and keyed_from is None:
        # Legacy records are only the beginning of a chain that goes on keyed: any append since the
        # upgrade is keyed. A chain with none has had its MACs stripped (or nothing was written since).
        return _bad(checked, first, "no record carries a MAC: the chain was stripped of its MACs, unless nothing "
                                    "was recorded since the upgrade (then `passport audit anchor` starts the keyed "
                                    "records)", legacy_until)
    for seq, anchor in pinned.items():
        if seq > newest:
            return _bad(checked, newest + 1, f"record {seq}, anchored at {anchor['at']}, is missing: the chain ends "
                                             f"at record {newest} (its end was cut off)", legacy_until)
        if removed_upto < seq < first:
            return _bad(checked, first, f"record {seq}, anchored at {anchor['at']}, is missing and no retention "
                                        "checkpoint removed it", legacy_until)
    return ChainReport(True, checked, legacy_until=legacy_until, anchors=len(pinned))


def verify_chain(db: Session) -> tuple[bool, int, int | None]:
    """Recompute every hash in order. Returns (ok, records checked, first bad seq)."""
    report = verify(db)
    return report.ok, report.checked, report.first_bad


# --- anchors ---------------------------------------------------------------------------------------
#
# The MACs stop anyone without the audit key from rewriting records. They cannot stop someone from
# cutting off the newest records (and moving the head back), nor from resetting the whole chain to
# its legacy, unkeyed form: an anchor, a signed copy of the head kept outside the database, does.

ANCHOR_TYPE = "passport.audit.anchor"
_ANCHOR_FIELDS = {"type": str, "version": int, "seq": int, "mac": str, "at": str, "key_id": str,
                  "signature": str}


def _anchor_signature(key: bytes, anchor: dict) -> str:
    body = {name: anchor[name] for name in _ANCHOR_FIELDS if name != "signature"}
    return hmac.new(key, _ANCHOR_LABEL + _json(body).encode(), "sha256").hexdigest()


def make_anchor(rt, origin: Origin) -> dict:
    """Append ``audit.anchored`` and return the signed anchor of that record: its seq, its MAC (the
    head's link), its time and the key id, with an HMAC signature by the current audit key. The
    operator keeps it outside the database (``passport audit anchor``)."""
    with rt.db.write() as db:
        row = record(db, at=rt.clock.now(), action=ANCHORED, origin=origin, actor_type="system")
    keys = rt.keys.audit
    anchor = {"type": ANCHOR_TYPE, "version": 1, "seq": row["seq"], "mac": row["mac"], "at": rfc3339(row["at"]),
              "key_id": row["key_id"]}
    return anchor | {"signature": _anchor_signature(keys.current, anchor)}


def anchor_line(anchor: dict) -> str:
    """An anchor as one JSON line (anchors files are JSON lines: ``>> anchors.jsonl``)."""
    return json.dumps(anchor, sort_keys=True, separators=(",", ":")) + "\n"


class AnchorError(ValueError):
    pass


def parse_anchor(text: str) -> dict:
    """One anchor from its JSON line; ``AnchorError`` if it is not one (its signature is checked by
    ``verify``, which has the keys)."""
    try:
        anchor = json.loads(text)
    except ValueError:
        raise AnchorError("not JSON") from None
    if not isinstance(anchor, dict) or anchor.get("type") != ANCHOR_TYPE:
        raise AnchorError(f"not a {ANCHOR_TYPE}")
    for name, kind in _ANCHOR_FIELDS.items():
        if not isinstance(anchor.get(name), kind) or isinstance(anchor.get(name), bool):
            raise AnchorError(f"{name} missing or not a {kind.__name__}")
    if anchor["version"] != 1:
        raise AnchorError(f"unknown anchor version {anchor['version']}")
    return anchor


def anchor_problem(keys: MacKeyring, anchor: dict) -> str | None:
    """Why an anchor cannot be trusted (unknown key id, bad signature), or None."""
    key = keys.key(anchor["key_id"])
    if key is None:
        return f"signed with audit key {anchor['key_id']!r}, which is not configured (PASSPORT_AUDIT_KEYS)"
    if not hmac.compare_digest(_anchor_signature(key, anchor), anchor["signature"]):
        return "the signature does not match: the anchor was changed or not made with this key"
    return None


def sweep_expired(rt, db: Session) -> dict[str, Any] | None:
    """Remove the records older than ``audit_retention_days`` (COMPLIANCE L1), oldest first as one
    unbroken prefix of the chain, and append a checkpoint naming what went and the last removed
    hash and MAC (the first kept record's MAC covers it), in the caller's transaction. Returns the
    checkpoint details, or None if nothing expired."""
    now = rt.clock.now()
    cutoff = now - timedelta(days=rt.settings.audit_retention_days)
    db.execute(_HEAD_LOCKED if _postgres(db) else _HEAD)  # no append runs while the prefix goes
    first_kept = db.scalar(select(func.min(_events.c.seq)).where(_events.c.at >= cutoff))
    upto = (first_kept - 1) if first_kept is not None else db.scalar(select(func.max(_events.c.seq)))
    if upto is None:
        return None
    first, count = db.execute(select(func.min(_events.c.seq), func.count()).where(_events.c.seq <= upto)).one()
    if not count:
        return None
    last = db.execute(select(_events.c.seq, _events.c.hash, _events.c.mac, _events.c.at)
                      .where(_events.c.seq == upto)).one()
    details = {"first_removed_seq": first, "last_removed_seq": last.seq, "removed": count,
               "last_removed_hash": last.hash, "last_removed_mac": last.mac, "last_removed_at": rfc3339(last.at),
               "cutoff": rfc3339(cutoff), "retention_days": rt.settings.audit_retention_days}
    # The checkpoint joins the chain after the newest record, then the expired prefix goes.
    record(db, at=now, action=CHECKPOINT, origin=Origin(channel="worker"), actor_type="system", details=details)
    db.execute(delete(_events).where(_events.c.seq <= upto))
    return details


def _conditions(subject: str | None = None, action: str | None = None, actor: str | None = None,
                since: datetime | None = None, until: datetime | None = None, before: int | None = None) -> list:
    conditions = []
    if subject:
        conditions.append(_events.c.subject_id == subject)
    if action:
        conditions.append(_events.c.action == action)
    if actor:
        conditions.append(_events.c.actor_id == actor)
    if since is not None:
        conditions.append(_events.c.at >= since)
    if until is not None:
        conditions.append(_events.c.at < until)
    if before is not None:
        conditions.append(_events.c.seq < before)
    return conditions


def as_dict(row) -> dict[str, Any]:
    """A record as auditors see it (details are masked when written)."""
    return {"seq": row.seq, "at": rfc3339(row.at), "actor_type": row.actor_type, "actor_id": row.actor_id,
            "subject_type": row.subject_type, "subject_id": row.subject_id, "action": row.action,
            "result": row.result, "ip": row.ip, "user_agent": row.user_agent, "details": json.loads(row.details),
            "prev_hash": row.prev_hash, "hash": row.hash}


def search(db: Session, *, limit: int = 50, **filters: Any) -> list[dict[str, Any]]:
    """Records matching the filters, newest first by seq; page with ``before`` = the smallest seq seen."""
    rows = db.execute(select(_events).where(*_conditions(**filters)).order_by(_events.c.seq.desc())
                      .limit(max(1, min(limit, 500)))).all()
    return [as_dict(r) for r in rows]


def export_rows(db: Session, *, since: datetime | None = None, until: datetime | None = None,
                batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every record in the period, oldest first, streamed ``batch`` rows at a time."""
    rows = db.execute(select(_events).where(*_conditions(since=since, until=until)).order_by(_events.c.seq)
                      .execution_options(yield_per=batch))
    for row in rows:
        yield as_dict(row)


EXPORT_COLUMNS = ("seq", "at", "actor_type", "actor_id", "subject_type", "subject_id", "action", "result", "ip",
                  "user_agent", "details", "prev_hash", "hash")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): text that starts
    with = + - @ TAB or CR gets a leading apostrophe. User agents and details are user-controlled."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_lines(records: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """JSON lines (values as stored), or CSV with a header row (``details`` as compact JSON, cells made
    spreadsheet-safe)."""
    if fmt == "jsonl":
        for item in records:
            yield json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF rows, so a field holding CR or LF is quoted
    writer.writerow(EXPORT_COLUMNS)
    for item in records:
        writer.writerow([spreadsheet_safe(json.dumps(item[c], ensure_ascii=False, separators=(",", ":")))
                         if c == "details" else ("" if item[c] is None else spreadsheet_safe(item[c]))
                         for c in EXPORT_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def filters_for_record(**filters: Any) -> dict[str, Any]:
    """The filters an auditor used, for the ``audit.searched`` / ``audit.exported`` record."""
    return {k: (rfc3339(v) if isinstance(v, datetime) else v) for k, v in filters.items() if v not in (None, "")}


def staff_search(rt, origin: Origin, staff_id: str, *, limit: int = 50, **filters: Any) -> list[dict[str, Any]]:
    """A staff search of the log, itself recorded as ``audit.searched`` with the filters used."""
    with rt.db.write() as db:
        record(db, at=rt.clock.now(), action="audit.searched", origin=origin, actor_type="staff", actor_id=staff_id,
               details=filters_for_record(**filters, limit=limit))
    with rt.db.read() as db:
        return search(db, limit=limit, **filters)


def staff_export(rt, origin: Origin, staff_id: str, *, fmt: str, since: datetime | None = None,
                 until: datetime | None = None) -> Iterator[str]:
    """Record ``audit.exported``, then return the export as a lazy stream of text chunks."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r}")
    with rt.db.write() as db:
        record(db, at=rt.clock.now(), action="audit.exported", origin=origin, actor_type="staff", actor_id=staff_id,
               details=filters_for_record(since=since, until=until, format=fmt))

    def stream() -> Iterator[str]:
        with rt.db.read() as db:
            yield from export_lines(export_rows(db, since=since, until=until), fmt)

    return stream()


def staff_verify(rt, origin: Origin, staff_id: str) -> ChainReport:
    """Verify the chain for a staff member; the check is recorded with its outcome."""
    with rt.db.read() as db:
        report = verify(db)
    with rt.db.write() as db:
        record(db, at=rt.clock.now(), action="audit.verified", origin=origin, actor_type="staff", actor_id=staff_id,
               result="ok" if report.ok else "failed",
               details={"checked": report.checked, "first_bad": report.first_bad, "reason": report.reason})
    return report
