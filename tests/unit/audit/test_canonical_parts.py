"""audit.canonical_parts: the pieces PostgreSQL joins around prev_hash and seq when it computes a
record's hash inside a statement (audit.appending_after) must give exactly ``canonical``'s bytes,
or the chain it writes would not verify."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from passport.audit.service import GENESIS, canonical, canonical_parts, content

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
rows = st.fixed_dictionaries({
    "at": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    "actor_type": st.sampled_from(["user", "staff", "system", "anonymous"]), "actor_id": st.none() | text,
    "subject_type": st.none() | text, "subject_id": st.none() | text, "action": text,
    "result": st.sampled_from(["ok", "failed", "denied"]) | text, "ip": st.none() | text,
    "user_agent": st.none() | text, "details": text,
})


@given(rows, st.integers(1, 2**62), st.sampled_from([GENESIS, "f" * 64]) | st.text("0123456789abcdef", min_size=64,
                                                                                   max_size=64))
def test_the_pieces_joined_around_prev_hash_and_seq_are_the_canonical_bytes(row, seq, prev_hash):
    c1, c2, c3 = canonical_parts(row)
    assert (c1 + prev_hash + c2 + str(seq) + c3).encode() == canonical(row | {"seq": seq, "prev_hash": prev_hash})


@given(rows)
def test_the_content_the_record_key_covers_is_the_pieces_with_a_blank_place(row):
    """append_params makes the record key from the pieces, record and verify from ``content``."""
    c1, c2, c3 = canonical_parts(row)
    assert (c1 + c2 + "0" + c3).encode() == content(row) == canonical(row | {"seq": 0, "prev_hash": ""})


def test_the_pieces_hold_no_prev_hash_or_seq_of_their_own():
    row = {"at": datetime(2026, 11, 29, tzinfo=UTC), "actor_type": "user", "actor_id": "a", "subject_type": None,
           "subject_id": None, "action": "login.succeeded", "result": "ok", "ip": "127.0.0.1",
           "user_agent": "ua", "details": "{}"}
    c1, c2, c3 = canonical_parts(row)
    assert c1.endswith('"prev_hash":"') and c2.endswith('"seq":')
    assert '"seq"' not in c1 + c3 and '"prev_hash"' not in c2 + c3
