"""Review finding 10: the lists of versions (the gate's cache, a kind's history, the admin console)
never load the document bodies."""

from __future__ import annotations

from sqlalchemy import event

from passport.agreements import service


def test_version_lists_do_not_select_the_body(rt, publish):
    publish("cache-terms", "1.0", body="# Terms\n\nA long body.\n")
    service._versions_cache.clear()
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(rt.db.engine, "before_cursor_execute", seen)
    try:
        with rt.db.read() as db:
            cached = service.current_versions(rt, db)
            kind_history = service.history(db, "cache-terms")
            listed = service.all_versions(db)
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", seen)
    selects = [s for s in statements if "agreement_versions" in s]
    assert len(selects) == 3
    assert not [s for s in selects if "body" in s]
    assert any(v.kind == "cache-terms" for v in cached) and kind_history[0].version == "1.0"
    assert all(v.body is None for v in listed)
    with rt.db.read() as db:  # a single version still comes with its body
        assert service.get_version(db, "cache-terms", "1.0", rt).body == "# Terms\n\nA long body.\n"
