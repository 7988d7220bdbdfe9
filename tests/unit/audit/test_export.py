"""The export encodings of the audit log (audit.service.export_lines): JSON lines and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passport.audit.service import EXPORT_COLUMNS, export_lines, spreadsheet_safe

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
records = st.lists(st.fixed_dictionaries({
    "seq": st.integers(1, 10**12), "at": st.just("2026-01-01T00:00:00Z"), "actor_type": st.just("staff"),
    "actor_id": st.none() | text, "subject_type": st.none() | text, "subject_id": st.none() | text,
    "action": text, "result": st.sampled_from(["ok", "failed", "denied"]), "ip": st.none() | text,
    "user_agent": st.none() | text, "details": st.dictionaries(text, text | st.integers() | st.booleans()),
    "prev_hash": st.just("0" * 64), "hash": st.just("a" * 64),
}), max_size=5)


@given(records)
def test_json_lines_round_trip(items):
    lines = "".join(export_lines(items, "jsonl")).split("\n")  # JSON lines end at \n only
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == items


@given(records)
def test_csv_has_a_header_and_round_trips(items):
    rows = list(csv.reader(io.StringIO("".join(export_lines(items, "csv")), newline="")))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert len(rows) == len(items) + 1
    for row, item in zip(rows[1:], items, strict=True):
        got = dict(zip(EXPORT_COLUMNS, row, strict=True))
        assert json.loads(got["details"]) == item["details"]
        assert got["seq"] == str(item["seq"]) and got["action"] == spreadsheet_safe(item["action"])
        assert got["actor_id"] == spreadsheet_safe(item["actor_id"] or "")


def test_csv_cells_never_start_a_spreadsheet_formula():
    item = {c: None for c in EXPORT_COLUMNS} | {"seq": 1, "action": "login.failed", "details": {},
                                                "user_agent": '=HYPERLINK("http://evil.example","x")',
                                                "subject_id": "+1", "actor_id": "@SUM(A1)"}
    [_, row] = list(csv.reader(io.StringIO("".join(export_lines([item], "csv")), newline="")))
    got = dict(zip(EXPORT_COLUMNS, row, strict=True))
    assert got["user_agent"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert got["subject_id"] == "'+1" and got["actor_id"] == "'@SUM(A1)" and got["action"] == "login.failed"


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown export format"):
        list(export_lines([], "xml"))
