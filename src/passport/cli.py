"""``passport`` command line: serve, migrate, worker, openapi, agreements, admin, keys."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from passport.clock import in_china_time
from passport.notify import maintenance, outbox
from passport.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="passport: the Orginone account service.")
agreements_app = typer.Typer(no_args_is_help=True, help="Publish agreement versions.")
app.add_typer(agreements_app, name="agreements")
admin_app = typer.Typer(no_args_is_help=True, help="Staff accounts for the admin console.")
app.add_typer(admin_app, name="admin")

OPENAPI_FILE = Path("openapi.json")


def _runtime():
    from passport.logs import configure_logging
    from passport.runtime import build_runtime

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return build_runtime(settings, pool_size=2)


def _cli_origin():
    from passport.audit.service import Origin

    return Origin(ip=None, user_agent=f"passport-cli ({os.environ.get('USER', 'unknown')})", channel="cli")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from passport.db import migrate as run_migrations

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    run_migrations(settings.resolved_database_url)
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    with_worker: Annotated[bool, typer.Option("--with-worker", help="Run due jobs in this process.")] = False,
) -> None:
    """Serve the web pages and the JSON API."""
    import uvicorn

    from passport.logs import configure_logging
    from passport.web.server import LimitedH11Protocol

    # Server processes inherit the environment: each sizes its hashing slots to its share of cores.
    os.environ["PASSPORT_SERVER_PROCESSES"] = str(workers)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    stop = threading.Event()
    if with_worker:
        from passport.runtime import build_runtime
        from passport.worker import run_forever

        worker_rt = build_runtime(settings, pool_size=1)
        threading.Thread(target=run_forever, args=(worker_rt, stop), daemon=True, name="worker").start()
    try:
        # Limits (README "Server limits"): the request line and headers, header lines and the time to
        # send them and the body (web/server.py), idle keep-alive, and connections and requests at once.
        uvicorn.run("passport.app:serving_app", factory=True, host=host, port=port, workers=workers,
                    access_log=False, proxy_headers=False, log_level=settings.log_level.lower(),
                    http=LimitedH11Protocol, h11_max_incomplete_event_size=settings.server_max_header_bytes,
                    timeout_keep_alive=settings.server_keep_alive_seconds,
                    limit_concurrency=settings.server_limit_concurrency)
    finally:
        stop.set()


@app.command()
def worker(once: Annotated[bool, typer.Option("--once", help="Run due jobs once and exit.")] = False) -> None:
    """Run due jobs: notice delivery (every PASSPORT_NOTICE_DELIVERY_INTERVAL_SECONDS), cancellation
    finalisation and retention sweeps (every PASSPORT_SWEEP_INTERVAL_SECONDS)."""
    from passport.worker import run_forever, run_once

    rt = _runtime()
    if once:
        typer.echo(json.dumps(run_once(rt)))
        return
    stop = threading.Event()
    try:
        run_forever(rt, stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def openapi(check: Annotated[bool, typer.Option("--check", help="Fail if openapi.json is stale.")] = False,
            output: Annotated[Path, typer.Option(help="Where to write.")] = OPENAPI_FILE) -> None:
    """Write the OpenAPI document of the JSON API (or check that the committed one is current)."""
    os.environ.setdefault("PASSPORT_ENV", "test")
    from passport.app import create_app

    document = json.dumps(create_app().openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if check:
        if not output.exists() or output.read_text(encoding="utf-8") != document:
            typer.echo(f"{output} is stale: run `make openapi` and commit it", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is current")
        return
    output.write_text(document, encoding="utf-8")
    typer.echo(f"wrote {output}")


@agreements_app.command("publish")
def agreements_publish(
    kind: str, version: str, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    title: Annotated[str | None, typer.Option(help="Title; default: the first heading of the file.")] = None,
    effective_at: Annotated[str | None, typer.Option(help="ISO 8601 time it takes effect; default now.")] = None,
    requires_reconsent: Annotated[bool, typer.Option("--requires-reconsent")] = False,
    immediate: Annotated[bool, typer.Option("--immediate", help="Let a re-consent version take effect now.")] = False,
) -> None:
    """Publish KIND VERSION from a Markdown FILE. Published versions are immutable."""
    from passport import errors
    from passport.agreements import service

    body = file.read_text(encoding="utf-8")
    when = None
    if effective_at:
        try:
            when = datetime.fromisoformat(effective_at.replace("Z", "+00:00"))
        except ValueError:
            typer.echo(f"--effective-at: not an ISO 8601 time: {effective_at!r}", err=True)
            raise typer.Exit(2) from None
        if when.tzinfo is None:
            typer.echo("--effective-at needs a time zone, e.g. 2027-01-01T00:00:00+08:00", err=True)
            raise typer.Exit(2)
    rt = _runtime()
    try:
        v = service.publish(rt, _cli_origin(), kind=kind, version=version, title=title or _first_heading(body, kind),
                            body=body, effective_at=when, requires_reconsent=requires_reconsent, immediate=immediate)
    except errors.DomainError as exc:
        typer.echo(f"{exc.code}: {exc.title}", err=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo(f"published {v.kind} {v.version} (sha256 {v.digest[:12]}…) effective {v.effective_at.isoformat()}")


@agreements_app.command("seed")
def agreements_seed() -> None:
    """Publish the bundled placeholder user agreement and privacy policy where none exists (dev)."""
    from sqlalchemy import select

    from passport.agreements import service
    from passport.agreements.models import AgreementVersion

    rt = _runtime()
    try:
        for kind in service.REQUIRED_AT_REGISTRATION:
            with rt.db.read() as db:
                exists = db.scalar(select(AgreementVersion.id).where(AgreementVersion.kind == kind).limit(1))
            if exists:
                continue
            body = resources.files("passport.seed").joinpath(f"{kind}.md").read_text(encoding="utf-8")
            service.publish(rt, _cli_origin(), kind=kind, version="1.0", title=_first_heading(body, kind), body=body)
            typer.echo(f"published placeholder {kind} 1.0")
    finally:
        rt.close()


@agreements_app.command("export")
def agreements_export(
    kind: Annotated[str | None, typer.Option(help="Only this document kind or optional purpose.")] = None,
    version: Annotated[str | None, typer.Option(help="Only this version (needs --kind).")] = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",  # noqa: A002
) -> None:
    """Write the consent ledger to stdout, oldest first (the export is itself audited)."""
    import sys

    from passport import errors
    from passport.agreements import service

    if format not in ("jsonl", "csv"):
        raise typer.BadParameter("--format must be jsonl or csv")
    rt = _runtime()
    try:
        for chunk in service.export(rt, _cli_origin(), fmt=format, kind=kind, version=version):
            sys.stdout.write(chunk)
        sys.stdout.flush()
    except errors.DomainError as exc:
        typer.echo(f"{exc.code}: {exc.title}", err=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()


@admin_app.command("create")
def admin_create(
    login: Annotated[str, typer.Option("--login", help="Staff login: 3-64 lower-case letters, digits, . _ -")],
    role: Annotated[str, typer.Option("--role", help="superadmin | reviewer | auditor | operator")],
) -> None:
    """Create a staff member and print their one-time enrolment link (valid 24 hours)."""
    from passport import errors
    from passport.admin import service

    if role not in service.ROLES:
        typer.echo(f"--role: unknown role {role!r}; choose one of {', '.join(service.ROLES)}", err=True)
        raise typer.Exit(2)
    rt = _runtime()
    try:
        _staff_id, token = service.create_staff(rt, _cli_origin(), login=login, role=role)
        url = service.enrolment_url(rt, token)
    except errors.DomainError as exc:
        typer.echo(f"{exc.code}: {exc.title}", err=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo(f"created {role} {login.strip().lower()}; one-time enrolment link (valid 24 hours):")
    typer.echo(url)


realname_app = typer.Typer(no_args_is_help=True, help="Real-name verification.")
app.add_typer(realname_app, name="realname")


@realname_app.command("revoke")
def realname_revoke(
    account_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (at least 5 characters); the user is told.")],
) -> None:
    """Withdraw an account's real-name verification (e.g. a stolen ID number): the ID number is free again."""
    from passport import errors
    from passport.realname import person

    rt = _runtime()
    try:
        shown = person.revoke_verification(rt, _cli_origin(), account_id, reason=reason, actor=("cli", None))
    except errors.DomainError as exc:
        typer.echo(f"{exc.code}: {exc.title}", err=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo(f"revoked; account {account_id} is now {shown['status']}")


@admin_app.command("reset")
def admin_reset(
    login: Annotated[str, typer.Option("--login", help="The staff login to reset")],
) -> None:
    """Lost password or authenticator: end the staff member's sessions, clear both, and print a new
    one-time enrolment link (valid 24 hours)."""
    from passport import errors
    from passport.admin import service

    rt = _runtime()
    try:
        reset = service.reset_staff(rt, _cli_origin(), None, login=login)
    except errors.DomainError as exc:
        typer.echo(f"{exc.code}: {exc.title}", err=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo(f"reset {reset['role']} {reset['login']}; one-time enrolment link (valid 24 hours):")
    typer.echo(reset["enrolment_url"])


def _first_heading(body: str, default: str) -> str:
    for line in body.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return default




audit_app = typer.Typer(no_args_is_help=True, help="Verify, anchor and export the audit log.")
app.add_typer(audit_app, name="audit")


def _iso(value: str | None, name: str) -> datetime | None:
    from passport.clock import as_utc

    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise typer.BadParameter(f"{name} must be an ISO 8601 time, e.g. 2026-01-31T00:00:00+08:00") from None


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[list[Path] | None, typer.Option(
        "--anchor", help="A file of anchors (JSON lines written by `passport audit anchor`): each is checked. "
                         "Repeatable.")] = None,
) -> None:
    """Recompute the hash chain and its MACs (and check the anchors given): exit 0 when intact, 1 naming
    the first bad record."""
    from passport.audit import service as audit

    anchors = []
    for path in anchor or ():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise typer.BadParameter(f"cannot read {path}: {error}", param_hint="--anchor") from None
        found = 0
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    anchors.append(audit.parse_anchor(line))
                except audit.AnchorError as error:
                    typer.echo(f"bad: {path} line {number} is not an anchor: {error}", err=True)
                    raise typer.Exit(1) from None
                found += 1
        if not found:
            typer.echo(f"bad: {path} holds no anchor", err=True)
            raise typer.Exit(1)
    rt = _runtime()
    try:
        with rt.db.read() as db:
            report = audit.verify(db, anchors=anchors)
    finally:
        rt.close()
    if report.ok:
        anchored = f", {report.anchors} anchored records match" if anchors else ""
        typer.echo(f"ok: {report.checked} records{anchored}")
        if report.legacy_until is not None:
            typer.echo(f"note: records up to seq {report.legacy_until} are legacy: written before the audit keys, "
                       "they have a hash but no MAC")
        return
    typer.echo(f"bad: record seq {report.first_bad}: {report.reason} ({report.checked} records intact before it)",
               err=True)
    raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    output: Annotated[Path | None, typer.Option(
        "--output", help="Append the anchor to this file (JSON lines) instead of writing it to stdout.")] = None,
) -> None:
    """Record audit.anchored and write a signed anchor of it (seq, MAC, time, key id) as one JSON line.
    Keep anchors outside the database; `passport audit verify --anchor FILE` checks them."""
    import sys

    from passport.audit import service as audit

    target = output.open("a", encoding="utf-8") if output else sys.stdout  # fails before anything is recorded
    try:
        rt = _runtime()
        try:
            anchor = audit.make_anchor(rt, _cli_origin())
        finally:
            rt.close()
        target.write(audit.anchor_line(anchor))
        target.flush()
    finally:
        if output:
            target.close()
    if output:
        typer.echo(f"anchored record {anchor['seq']} (key {anchor['key_id']}) in {output}")


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="Records at or after this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Records before this ISO 8601 time.")] = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",  # noqa: A002
) -> None:
    """Write the audit records of a period to stdout, oldest first (the export is itself audited)."""
    import sys

    from passport.audit import service as audit

    if format not in ("jsonl", "csv"):
        raise typer.BadParameter("--format must be jsonl or csv")
    start, end = _iso(since, "--since"), _iso(until, "--until")
    rt = _runtime()
    try:
        with rt.db.write() as db:
            audit.record(db, at=rt.clock.now(), action="audit.exported", origin=_cli_origin(), actor_type="system",
                         details=audit.filters_for_record(since=start, until=end, format=format))
        with rt.db.read() as db:
            for chunk in audit.export_lines(audit.export_rows(db, since=start, until=end), format):
                sys.stdout.write(chunk)
        sys.stdout.flush()
    finally:
        rt.close()


notices_app = typer.Typer(no_args_is_help=True, help="The notice outbox (SMS and email notices).")
app.add_typer(notices_app, name="notices")
maintenance_app = typer.Typer(no_args_is_help=True, help="Maintenance windows (announced in advance; 503 during).")
app.add_typer(maintenance_app, name="maintenance")
phone_changes_app = typer.Typer(no_args_is_help=True,
                                help="Phone changes held after a recovery-key request (the worker applies them).")
app.add_typer(phone_changes_app, name="phone-changes")


@notices_app.command("status")
def notices_status(
    failed: Annotated[bool, typer.Option("--failed", help="List the failed notices.")] = False,
) -> None:
    """Counts by status; with --failed, the failed notices (recipients masked) as JSON lines."""

    rt = _runtime()
    try:
        typer.echo(json.dumps(outbox.outbox_stats(rt)))
        for row in outbox.list_outbox(rt, status="failed", limit=200) if failed else []:
            typer.echo(json.dumps(row, ensure_ascii=False))
    finally:
        rt.close()


@notices_app.command("retry-failed")
def notices_retry_failed(
    since: Annotated[str | None, typer.Option(help="Only notices queued at or after this ISO 8601 time.")] = None,
) -> None:
    """Queue failed notices again (after fixing a template, PASSPORT_SMS_TEMPLATES or the provider)."""

    rt = _runtime()
    try:
        typer.echo(f"requeued {outbox.retry_failed(rt, _cli_origin(), since=_iso(since, '--since'))} notice(s)")
    finally:
        rt.close()


@maintenance_app.command("schedule")
def maintenance_schedule(
    start: Annotated[str, typer.Option("--start", help="ISO 8601 start; without a zone, Beijing time.")],
    end: Annotated[str, typer.Option("--end", help="ISO 8601 end; without a zone, Beijing time.")],
    message: Annotated[str, typer.Option("--message", help="What users are told.")],
) -> None:
    """Schedule a window; it is announced PASSPORT_MAINTENANCE_NOTICE_HOURS ahead."""
    from passport import errors

    rt = _runtime()
    try:
        window = maintenance.schedule_maintenance(rt, _cli_origin(), starts_at=_beijing(start, "--start"),
                                              ends_at=_beijing(end, "--end"), message=message)
    except errors.DomainError as exc:
        typer.echo(f"refused: {exc.code}: {exc.title}", err=True)
        raise typer.Exit(2) from None
    finally:
        rt.close()
    typer.echo(json.dumps(window, ensure_ascii=False))


@maintenance_app.command("list")
def maintenance_list() -> None:
    """Maintenance windows, newest first, as JSON lines."""

    rt = _runtime()
    try:
        for window in maintenance.list_maintenance(rt):
            typer.echo(json.dumps(window, ensure_ascii=False))
    finally:
        rt.close()


@maintenance_app.command("cancel")
def maintenance_cancel(window_id: str) -> None:
    """Cancel a window (or end one in progress); its announcement ends too."""
    from passport import errors

    rt = _runtime()
    try:
        maintenance.cancel_maintenance(rt, _cli_origin(), window_id)
    except errors.DomainError as exc:
        typer.echo(f"refused: {exc.code}: {exc.title}", err=True)
        raise typer.Exit(2) from None
    finally:
        rt.close()
    typer.echo(f"cancelled {window_id}")


@phone_changes_app.command("list")
def phone_changes_list() -> None:
    """The held changes, soonest first, as JSON lines (the new number masked)."""
    from passport.credentials import phone

    rt = _runtime()
    try:
        for change in phone.list_held(rt):
            typer.echo(json.dumps(change, ensure_ascii=False))
    finally:
        rt.close()


@phone_changes_app.command("cancel")
def phone_changes_cancel(account_id: str) -> None:
    """Cancel the account's held change (the owner called customer service); the owner is told."""
    from passport import errors
    from passport.credentials import phone

    rt = _runtime()
    try:
        phone.cancel_by_operator(rt, _cli_origin(), account_id)
    except errors.DomainError as exc:
        typer.echo(f"refused: {exc.code}: {exc.title}", err=True)
        raise typer.Exit(2) from None
    finally:
        rt.close()
    typer.echo(f"cancelled the held phone change of {account_id}")


def _beijing(value: str, option: str) -> datetime:

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} must be an ISO 8601 time, not {value!r}") from None
    return in_china_time(parsed)


# --- keys (issue 15: key rotation) -------------------------------------------------------------------

keys_app = typer.Typer(no_args_is_help=True, help="Rotate the encryption and blind-index keys; see what is left.")
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 500,
) -> None:
    """Re-encrypt every encrypted value to the first key of PASSPORT_ENCRYPTION_KEYS (row-bound format)
    and recompute blind indexes under the first key of PASSPORT_BLIND_INDEX_KEY; safe while the service
    runs; run it again after an interruption. Prints what is left per key id (JSON)."""
    from passport.admin import keys

    rt = _runtime()
    try:
        report = keys.rotate(rt, _cli_origin(), batch_size=batch,
                             on_batch=lambda table, rows: typer.echo(f"{table}: {rows} row(s) checked", err=True))
    finally:
        rt.close()
    typer.echo(json.dumps(report))
    if not report["done"]:
        raise typer.Exit(1)


@keys_app.command("status")
def keys_status() -> None:
    """Encrypted values per key id, those not yet on the active key or row-bound format, and blind
    indexes by key (JSON); exit 1 while something is left for ``passport keys rotate``."""
    from passport.admin import keys

    rt = _runtime()
    try:
        report = keys.status(rt)
    finally:
        rt.close()
    typer.echo(json.dumps(report))
    if not report["done"]:
        raise typer.Exit(1)


review_app = typer.Typer(no_args_is_help=True, help="Account-information review: test texts against the lexicons.")
app.add_typer(review_app, name="review")


@review_app.command("check")
def review_check(
    text: str,
    field: Annotated[str, typer.Option(help="nickname | bio | organization_name | text")] = "text",
) -> None:
    """The engine's verdict for TEXT with the current lexicons (bundled + PASSPORT_MODERATION_LEXICON_DIR +
    the terms added at runtime), as JSON: verdict, normalised text, hits. Exit 0 allow, 1 review, 2 block."""
    from passport.moderation import service
    from passport.moderation.lexicon import FIELDS

    if field not in FIELDS:
        raise typer.BadParameter(f"--field must be one of {', '.join(FIELDS)}, not {field!r}")
    rt = _runtime()
    try:
        decision = service.check(rt, field, text)
        version = service.engine(rt).version
    finally:
        rt.close()
    typer.echo(json.dumps(decision.view() | {"lexicon_version": version}, ensure_ascii=False))
    raise typer.Exit({"allow": 0, "review": 1, "block": 2}[decision.verdict])


@review_app.command("rescan")
def review_rescan(
    field: Annotated[list[str] | None, typer.Option("--field", help="nickname | bio | organization_name "
                                                                  "(repeatable; default: all three)")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction")] = 500,
) -> None:
    """Re-check what accounts and organisations already show against the current lexicons (after a
    lexicon change), in batches; each hit goes to the profile review queue. Prints the counts as JSON."""
    from passport.accounts import profile
    from passport.realname import organizations

    chosen = field or ["nickname", "bio", "organization_name"]
    for name in chosen:
        if name not in ("nickname", "bio", "organization_name"):
            raise typer.BadParameter(f"--field must be nickname, bio or organization_name, not {name!r}")
    rt = _runtime()
    try:
        report = {name: (organizations.rescan_names(rt, _cli_origin(), batch=batch) if name == "organization_name"
                         else profile.rescan(rt, _cli_origin(), name, batch=batch)) for name in chosen}
    finally:
        rt.close()
    typer.echo(json.dumps(report))


@review_app.command("lexicon")
def review_lexicon() -> None:
    """What the engine was built from: version, files, entries by category, automaton keys, build time."""
    import time
    from collections import Counter

    from passport.moderation.engine import Engine, directories
    from passport.moderation.lexicon import lexicon_files, load

    dirs = directories(Settings().moderation_lexicon_dir)
    lexicon = load(dirs)
    started = time.perf_counter()
    engine = Engine(lexicon)
    typer.echo(json.dumps({
        "version": lexicon.version, "files": [str(p) for p in lexicon_files(dirs)], "entries": len(lexicon.entries),
        "by_category": dict(Counter(e.category for e in lexicon.entries).most_common()),
        "automaton_keys": engine.size, "build_ms": round((time.perf_counter() - started) * 1000, 1)},
        ensure_ascii=False, indent=2))


apps_app = typer.Typer(no_args_is_help=True, help="Single sign-on: the apps that sign users in with passport.")
app.add_typer(apps_app, name="apps")
oidc_app = typer.Typer(no_args_is_help=True, help="Single sign-on: the OpenID Connect provider.")
app.add_typer(oidc_app, name="oidc")
oidc_keys_app = typer.Typer(no_args_is_help=True, help="ID-token signing keys (RS256, ES256).")
oidc_app.add_typer(oidc_keys_app, name="keys")


def _apps_call(call) -> None:
    from passport import errors

    rt = _runtime()
    try:
        shown = call(rt)
    except errors.DomainError as exc:
        typer.echo(f"refused: {exc.code}: {exc.title}", err=True)
        raise typer.Exit(2) from None
    finally:
        rt.close()
    typer.echo(json.dumps(shown, ensure_ascii=False, indent=2))


@apps_app.command("create")
def apps_create(
    name: str,
    redirect_uri: Annotated[list[str] | None,
                            typer.Option("--redirect-uri", help="Exact redirect URI (repeat)")] = None,
    public: Annotated[bool, typer.Option("--public", help="A public client (no secret; PKCE S256 required)")] = False,
    scope: Annotated[list[str] | None,
                     typer.Option("--scope", help="Allowed scope (repeat); default openid profile")] = None,
    first_party: Annotated[bool, typer.Option("--first-party", help="The platform's own app: no consent screen "
                                                                     "for non-sensitive scopes")] = False,
    grant: Annotated[list[str] | None,
                     typer.Option("--grant", help="Extra grant type, e.g. client_credentials")] = None,
    backchannel_logout_uri: Annotated[str | None, typer.Option("--backchannel-logout-uri")] = None,
    post_logout_redirect_uri: Annotated[list[str] | None, typer.Option("--post-logout-redirect-uri")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="The verified owner shown on the consent screen")] = None,
    allow_claim: Annotated[list[str] | None, typer.Option("--allow-claim", help="phone_number | name")] = None,
    resource_server: Annotated[bool, typer.Option("--resource-server", help="May introspect any app's tokens")] = False,
    id_token_alg: Annotated[str, typer.Option("--id-token-alg", help="RS256 | ES256")] = "RS256",  # noqa: S107
    sector: Annotated[str | None, typer.Option("--sector", help="Pairwise subject sector (default: the first "
                                                                "redirect URI's host)")] = None,
) -> None:
    """Register an app; prints JSON with client_id and, for a confidential app, client_secret (shown once)."""
    from passport.oidc import service

    _apps_call(lambda rt: service.create_app(
        rt, _cli_origin(), name=name, redirect_uris=redirect_uri or [], public=public, scopes=scope,
        first_party=first_party, backchannel_logout_uri=backchannel_logout_uri, grants=grant, owner=owner,
        post_logout_redirect_uris=post_logout_redirect_uri, allowed_claims=allow_claim,
        resource_server=resource_server, id_token_alg=id_token_alg, sector=sector))


@apps_app.command("list")
def apps_list() -> None:
    """Every registered app (never a secret)."""
    from passport.oidc import service

    _apps_call(service.list_apps)


@apps_app.command("disable")
def apps_disable(client_id: str) -> None:
    """Stop the app at once: no new codes or tokens, its tokens revoked."""
    from passport.oidc import service

    _apps_call(lambda rt: service.disable_app(rt, _cli_origin(), client_id))


@apps_app.command("rotate-secret")
def apps_rotate_secret(client_id: str) -> None:
    """A new client secret, printed once; the old one stops working."""
    from passport.oidc import service

    _apps_call(lambda rt: service.rotate_secret(rt, _cli_origin(), client_id))


@oidc_keys_app.command("rotate")
def oidc_keys_rotate(
    alg: Annotated[list[str] | None, typer.Option("--alg", help="RS256 | ES256 (repeat); default both")] = None,
) -> None:
    """New signing keys; the old ones stay in the JWKS until the tokens they signed have expired."""
    from passport.oidc import keys
    from passport.work import unit_of_work

    algs = tuple(alg or keys.ALGORITHMS)
    if any(a not in keys.ALGORITHMS for a in algs):
        typer.echo(f"--alg: choose from {', '.join(keys.ALGORITHMS)}", err=True)
        raise typer.Exit(2)

    def rotate(rt):
        with unit_of_work(rt, _cli_origin(), actor=("cli", None)) as work:
            added = keys.rotate(rt, work.db, work.at, algs)
            work.audit("oidc.keys.rotated", details={"kids": [k.kid for k in added], "algs": list(algs)})
            return [{"kid": k.kid, "alg": k.alg} for k in added]

    _apps_call(rotate)


@oidc_keys_app.command("list")
def oidc_keys_list() -> None:
    """The signing keys: active, retired and whether the JWKS still publishes them."""
    from passport.oidc import keys

    def listing(rt):
        with rt.db.read() as db:
            return keys.listing(rt, db)

    _apps_call(listing)
retention_app = typer.Typer(no_args_is_help=True, help="Retention sweeps (issue 18): network data, terminated "
                                                       "accounts, report evidence.")
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run() -> None:
    """Run the retention sweeps now (the worker runs them every PASSPORT_SWEEP_INTERVAL_SECONDS): consent
    rows of finalised accounts lose IP and user agent after PASSPORT_NETWORK_LOG_DAYS; terminated accounts
    without a legal hold are anonymised, and closed reports lose their evidence images, after
    PASSPORT_TERMINATED_RETENTION_DAYS. Prints the counts as JSON."""
    from passport.reports import retention

    rt = _runtime()
    try:
        typer.echo(json.dumps(retention.run(rt)))
    finally:
        rt.close()
