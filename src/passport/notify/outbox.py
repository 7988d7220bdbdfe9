"""The notice outbox (issue 5, COMPLIANCE L2): every SMS/email notice is an outbox row written in the
caller's transaction and delivered by the worker with retries; in-site messages land in the inbox at once.

Other domains call ``notify_account`` inside their unit of work; they never send directly.
Templates: one file per template under ``notify/templates/`` (see that directory's README).
The send time is the delivery time (§十四(四)): ``sent_at`` on the outbox row, ``created_at`` in the inbox.
"""


from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, case, delete, exists, func, null, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.accounts.models import EMAIL, PHONE, Account
from passport.audit import service as audit
from passport.clock import china_time, rfc3339
from passport.identity.email import mask_email
from passport.identity.masking import mask_text
from passport.identity.phone import mask_phone
from passport.notify.models import RECIPIENT, InboxMessage, OutboxNotice
from passport.runtime import Runtime
from passport.security.tokens import keyed_digest, same
from passport.senders.email import EmailMessage
from passport.senders.sms import SmsMessage

log = structlog.get_logger("passport.notify")

CHANNELS = ("inbox", "sms", "email")
CATEGORIES = ("service", "marketing")
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
TEMPLATE_DIR = Path(__file__).parent / "templates"
SMS_SIGNATURE = "【奥集能】"
_TEMPLATE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_UNSUBSCRIBE_LINE = {"zh-CN": "退订营销消息：{url}", "en": "Unsubscribe from marketing messages: {url}"}





class TemplateError(ValueError):
    """An unknown template or a missing parameter: a programming error at queue time."""


@dataclass(frozen=True)
class Rendered:
    title: str
    text: str


@cache
def load_template(name: str) -> dict[str, dict[str, str]]:
    if not _TEMPLATE_ID.match(name or ""):
        raise TemplateError(f"not a template id: {name!r}")
    path = TEMPLATE_DIR / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"unknown notice template {name!r}") from None
    for lang in LANGUAGES:
        table = data.get(lang)
        if not isinstance(table, dict) or not isinstance(table.get("title"), str) or not isinstance(
                table.get("text"), str):
            raise TemplateError(f"notice template {name!r} needs [{lang}] with title and text")
    return {lang: {"title": data[lang]["title"], "text": data[lang]["text"]} for lang in LANGUAGES}


# Parameters a template's text computes from its stored ones whenever it is rendered (a signed link):
# what they hold is never stored with the notice. The domain that owns the template answers at import
# time (``credentials.phone`` for its "this was not me" link), as with the marketing consent below.
_computed: dict[str, Callable[[Runtime, dict[str, Any]], dict[str, str]]] = {}


def compute_params(template: str, compute: Callable[[Runtime, dict[str, Any]], dict[str, str]]) -> None:
    _computed[template] = compute


def _with_computed(rt: Runtime, name: str, params: dict[str, Any]) -> dict[str, Any]:
    compute = _computed.get(name)
    return params | compute(rt, params) if compute else params


def render(rt: Runtime, name: str, params: dict[str, Any], language: str = DEFAULT_LANGUAGE) -> Rendered:
    """The notice in ``language``; a parameter may be one string or a table by language."""
    texts = load_template(name)[language if language in LANGUAGES else DEFAULT_LANGUAGE]
    params = _with_computed(rt, name, params)
    values = {"base": rt.settings.base_url.rstrip("/"), "service_contact": service_contact(rt, language)} \
        | {k: _localised(v, language) for k, v in params.items()}
    try:
        title, text = texts["title"].format_map(values), texts["text"].format_map(values)
    except KeyError as exc:
        raise TemplateError(f"notice template {name!r} needs the parameter {exc.args[0]!r}") from None
    except (IndexError, ValueError, AttributeError) as exc:
        raise TemplateError(f"notice template {name!r} is malformed: {exc}") from None
    if language == "zh-CN" or language not in LANGUAGES:
        title, text = tidy_chinese(title), tidy_chinese(text)
    return Rendered(title, text)


# A value that ends with its own full stop ("原因：发布广告。") doubles the template's ("。。"); a space
# typed after full-width punctuation shows in Chinese text as a gap ("新版本， 也可以").
_DOUBLED_STOP = re.compile(r"([。！？])[。.．]+")
_SPACE_AFTER = re.compile(r"([，。：；！？、）」』”])[ \t\u3000]+")


def tidy_chinese(text: str) -> str:
    """Chinese text with doubled sentence ends and spaces after full-width punctuation removed."""
    return _SPACE_AFTER.sub(r"\1", _DOUBLED_STOP.sub(r"\1", text))


def service_contact(rt: Runtime, language: str) -> str:
    """The customer-service contact a notice that says "contact customer service" carries (issue 18,
    PASSPORT_CUSTOMER_SERVICE_*): empty when none is configured."""
    s = rt.settings
    zh = language != "en"
    shown = ((("客服电话", "phone"), getattr(s, "customer_service_phone", "")),
             (("客服邮箱", "email"), getattr(s, "customer_service_email", "")),
             (("服务时间", "hours"), getattr(s, "customer_service_hours", "")))
    parts = [f"{names[0]}：{value}" if zh else f"{names[1]} {value}" for names, value in shown if value]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return f"（{'，'.join(parts)}）" if zh else f" ({', '.join(parts)})"


def _localised(value: Any, language: str) -> str:
    if isinstance(value, dict):
        return str(value.get(language) or value.get(DEFAULT_LANGUAGE) or "")
    return str(value)


def _clean_params(params: dict[str, Any] | None) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if isinstance(value, dict):
            cleaned[str(key)] = {str(lang): str(text) for lang, text in value.items()}
        else:
            cleaned[str(key)] = "" if value is None else str(value)
    return cleaned



def notify_account(rt: Runtime, db: Session, *, account_id: str, template: str, params: dict[str, Any] | None = None,
                   channels: Iterable[str] = ("inbox", "sms"), category: str = "service") -> None:
    """Queue notice ``template`` for the account by each channel (inbox row now; SMS to its phone and
    email to its verified address through the outbox), in the caller's transaction.
    ``category`` "service" is always sent; "marketing" only with the account's marketing consent.
    A security notice (``SECURITY_TEMPLATES``) goes out by SMS or email only within the account's
    caps for that channel (``_within_cap``); the inbox always gets it, a repeated one coalesced."""
    channels = tuple(dict.fromkeys(channels))
    if not channels or set(channels) - set(CHANNELS):
        raise ValueError(f"notice channels must be among {CHANNELS}, not {channels!r}")
    if category not in CATEGORIES:
        raise ValueError(f"notice category must be one of {CATEGORIES}, not {category!r}")
    params = _clean_params(params)
    for language in LANGUAGES:  # an unknown template or a missing parameter fails here, not in the worker
        render(rt, template, params, language)
    if category == "marketing" and not marketing_enabled(db, account_id):
        return
    now = rt.clock.now()
    stored = json.dumps(params, ensure_ascii=False, sort_keys=True)
    security = template in SECURITY_TEMPLATES
    # One capped notice at a time per account (see _within_cap); one that finds another being counted
    # for the same account goes to the inbox only, as if over the cap, instead of waiting.
    counted = not security or _cap_turn(db, account_id)
    if "inbox" in channels and not (template in COALESCED and _coalesce(rt, db, account_id, template, params, now)):
        db.add(InboxMessage(account_id=account_id, template=template, params=stored, category=category,
                            created_at=now))
    outbound = [c for c in channels if c != "inbox"]
    if not outbound:
        return
    account = _account(db, account_id)
    for channel in outbound:
        if security and not (counted and _within_cap(rt, db, account_id, channel, template, now)):
            # Over the cap: the inbox has it (coalesced); the phone is not told again.
            log.info("notice.capped", account=account_id, channel=channel, template=template)
            continue
        recipient = _recipient(rt, account, channel)
        if channel == "email" and recipient is None:
            continue  # email is a second way to reach the owner; no verified address, nothing to send
        row = OutboxNotice(
            account_id=account_id, channel=channel, template=template, params=stored, category=category,
            language=DEFAULT_LANGUAGE, status="pending", attempts=0, next_attempt_at=now, created_at=now,
            last_error=None if recipient else "missing_recipient")
        db.add(row)
        if recipient:
            db.flush()  # the row's id, which the ciphertext is bound to
            row.recipient_enc = rt.keys.cipher.encrypt(recipient, RECIPIENT[channel], row.id)


# Security notices (COMPLIANCE C4, L2): each goes by SMS (or email) only within the per-account caps
# PASSPORT_SECURITY_SMS_PER_HOUR / _PER_DAY for that channel, counted over all of them together.
SECURITY_TEMPLATES = frozenset({"notice_locked", "notice_locked_repeated", "notice_new_device", "password_changed",
                                "password_reset", "recovery_key_changed", "account_frozen", "account_unfrozen",
                                "phone_changed"})
# What anyone can cause without any credential (wrong passwords lock the account): at most one such
# SMS an hour and half the day's cap, so a flood of them cannot use up the cap that a notice only
# the holder of a credential can cause (a new device, a changed password) still needs.
FLOODABLE = frozenset({"notice_locked", "notice_locked_repeated"})
# Repeats become one unread inbox item ("several sign-in attempts"), not one item each.
COALESCED = {"notice_locked": "notice_locked_repeated", "notice_locked_repeated": "notice_locked_repeated"}


def _cap_turn(db: Session, account_id: str) -> bool:
    """PostgreSQL: this transaction's turn to count the account's capped notices, so two simultaneous
    notices cannot both pass the cap (SQLite serialises write transactions already). A transaction
    lock that is tried, never waited for: the notice is queued wherever the caller stands in its
    transaction (after the audit chain's head, or before it), and waiting there could close a lock
    cycle with a login that holds the head and waits for the account. Held until commit; the same
    transaction may take it again."""
    if db.get_bind().dialect.name != "postgresql":
        return True
    key = int.from_bytes(hashlib.sha256(f"notice-cap:{account_id}".encode()).digest()[:8], "big", signed=True)
    return bool(db.scalar(select(func.pg_try_advisory_xact_lock(key))))


def _within_cap(rt: Runtime, db: Session, account_id: str, channel: str, template: str, now: datetime) -> bool:
    """Whether one more security notice may go to the account by ``channel``: fewer than the hour's
    and the day's caps queued, and for a floodable one, none in the last hour and fewer than half
    the day's cap. Counted from the outbox rows themselves (a row kept ``failed`` counts too)."""
    settings = rt.settings
    rows = db.execute(select(OutboxNotice.template, OutboxNotice.created_at).where(
        OutboxNotice.account_id == account_id, OutboxNotice.channel == channel,
        OutboxNotice.template.in_(SECURITY_TEMPLATES), OutboxNotice.created_at > now - timedelta(days=1))).all()
    hour = [row for row in rows if row.created_at > now - timedelta(hours=1)]
    if len(hour) >= settings.security_sms_per_hour or len(rows) >= settings.security_sms_per_day:
        return False
    if template in FLOODABLE:
        floods = [row for row in rows if row.template in FLOODABLE]
        recent = [row for row in floods if row.created_at > now - timedelta(hours=1)]
        return not recent and len(floods) < max(1, settings.security_sms_per_day // 2)
    return True


def _coalesce(rt: Runtime, db: Session, account_id: str, template: str, params: dict[str, Any],
              now: datetime) -> bool:
    """Fold a repeated notice into the account's unread one of the same kind: it becomes
    ``COALESCED[template]`` with a ``count`` and the time of the latest, and moves to the top.
    False when there is none unread (the caller writes a new item)."""
    kinds = [name for name, folded in COALESCED.items() if folded == COALESCED[template]]
    row = db.scalars(select(InboxMessage).where(
        InboxMessage.account_id == account_id, InboxMessage.template.in_(kinds), InboxMessage.read_at.is_(None))
        .order_by(InboxMessage.created_at.desc()).limit(1)).first()
    if row is None:
        return False
    before = json.loads(row.params)
    count = int(before.get("count", "1")) + 1
    merged = before | params | {"count": str(count), "time": china_time(now)}
    row.template, row.params, row.created_at = COALESCED[template], json.dumps(
        merged, ensure_ascii=False, sort_keys=True), now
    return True


def _account(db: Session, account_id: str):
    return accounts.get(db, account_id)


def _recipient(rt: Runtime, account, channel: str) -> str | None:
    if account is None:
        return None
    if channel == "sms":
        return rt.keys.cipher.decrypt(account.phone_enc, PHONE, account.id) if account.phone_enc else None
    return rt.keys.cipher.decrypt(account.email_enc, EMAIL, account.id) if account.email_enc else None



# Marketing goes only with the optional consent (§五(五)1, COMPLIANCE A4), which the agreements domain
# keeps; it sits above notify, so it answers through this hook (agreements.service sets it). Until
# something answers, no account has consented: marketing fails closed.
_marketing_consent: list[Callable[[Session, str], bool]] = []


def answer_marketing_consent(check: Callable[[Session, str], bool]) -> None:
    _marketing_consent[:] = [check]


def marketing_enabled(db: Session, account_id: str) -> bool:
    return bool(_marketing_consent) and _marketing_consent[0](db, account_id)


def withdraw_queued_marketing(rt: Runtime, db: Session, account_id: str, origin: audit.Origin) -> int:
    """Marketing notices still waiting for the worker are never sent once consent is withdrawn: they
    become ``failed`` ("withdrawn"), their recipient gone. (A row being sent right now is the worker's;
    the worker checks the consent again whenever it claims a row.)"""
    count = db.execute(update(OutboxNotice).where(OutboxNotice.account_id == account_id,
                                                  OutboxNotice.category == "marketing",
                                                  OutboxNotice.status == "pending")
                       .values(status="failed", last_error="withdrawn", recipient_enc=None)
                       .execution_options(synchronize_session=False)).rowcount
    if count:
        audit.record(db, at=rt.clock.now(), action="notices.withdrawn", origin=origin, actor_type="user",
                     actor_id=account_id, subject_type="account", subject_id=account_id, details={"notices": count})
    return count



def unsubscribe_token(rt: Runtime, account_id: str, key: bytes | None = None) -> str:
    """Made with the current secret key; a link made with the previous one works while it rotates."""
    mac = keyed_digest(key or rt.keys.secret, "notices.unsubscribe", account_id).hex()[:32]
    return f"{account_id}.{mac}"


def unsubscribe_url(rt: Runtime, account_id: str) -> str:
    return f"{rt.settings.base_url.rstrip('/')}/notices/unsubscribe?token={unsubscribe_token(rt, account_id)}"


def account_of_unsubscribe_token(rt: Runtime, token: str | None) -> str:
    account_id, _, mac = (token or "").partition(".")
    if not account_id or len(account_id) > 32 or not any(
            [same(unsubscribe_token(rt, account_id, key), token or "") for key in rt.keys.secrets]):
        raise errors.DomainError("invalid_unsubscribe_link", "This unsubscribe link is not valid.", 400)
    return account_id



@dataclass(frozen=True)
class _Job:
    id: int
    claim: str
    account_id: str | None
    channel: str
    template: str
    params: str
    category: str
    language: str
    recipient: str | None
    attempts: int
    lease_until: datetime
    claimed_at: float  # time.monotonic() at the claim


class _Undeliverable(RuntimeError):
    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def deliver_due(rt: Runtime, limit: int = 100) -> int:
    """Worker job: deliver due outbox rows; returns how many were attempted.

    Rows are claimed (status ``sending`` with a lease in ``next_attempt_at``) and committed before any
    provider is called, so a slow provider holds no lock and a crashed worker's rows come back after
    the lease. On PostgreSQL the claim skips rows another worker holds (FOR UPDATE SKIP LOCKED).
    A claim takes no more rows than the lease can cover at the slowest send (``_claim_size``), and a
    job is sent only while its lease still has a send timeout to run: once another worker may have
    reclaimed the row, this one leaves it alone (no notice goes out twice because a provider was slow).
    Outcomes are written in small batches (at most ``_FLUSH_EVERY`` notices or half a second): a
    worker that crashes after sending may send those again once its lease ends, never lose them."""
    attempted = 0
    while attempted < limit:
        batch = min(limit - attempted, _claim_size(rt))
        jobs = _claim(rt, batch)
        attempted += len(jobs)
        _deliver_batch(rt, jobs)
        if len(jobs) < batch:
            break
    return attempted


def _send_timeout(rt: Runtime, channel: str | None = None) -> float:
    """The longest one provider call may take (the margin a lease must still have before a send)."""
    settings = rt.settings
    if channel == "sms":
        return float(settings.sms_timeout_seconds)
    if channel == "email":
        return float(settings.smtp_timeout_seconds)
    return float(max(settings.sms_timeout_seconds, settings.smtp_timeout_seconds))


def _claim_size(rt: Runtime) -> int:
    """At most as many rows as can all be sent at the slowest within one lease."""
    return max(1, int(rt.settings.notice_lease_seconds // max(_send_timeout(rt), 0.001)))


def _deliver_batch(rt: Runtime, jobs: list[_Job]) -> None:
    outcomes: list[dict] = []
    flushed = time.monotonic()
    try:
        for job in jobs:
            if not _lease_left(rt, job):
                # Another worker may hold the row by now: no send, no outcome; the row comes back
                # after the lease (or is already someone else's).
                log.warning("notice.lease_expired", id=job.id, channel=job.channel, template=job.template)
                continue
            outcomes.append(_deliver(rt, job))
            if len(outcomes) >= _FLUSH_EVERY or time.monotonic() - flushed > 0.5:
                _record(rt, outcomes)
                outcomes, flushed = [], time.monotonic()
    finally:
        _record(rt, outcomes)


def _lease_left(rt: Runtime, job: _Job) -> bool:
    """True while the job's lease outlasts one more send, by the runtime clock (the one other workers
    judge the lease by) and by this process's monotonic clock (which no clock step can move back)."""
    margin = _send_timeout(rt, job.channel)
    lease = rt.settings.notice_lease_seconds
    return (rt.clock.now() + timedelta(seconds=margin) < job.lease_until
            and time.monotonic() + margin < job.claimed_at + lease)


_FLUSH_EVERY = 20


_outbox = OutboxNotice.__table__


def _live_account_missing():
    """SQL: the row's account is no live account (cancelled, a tombstone, or gone)."""
    rows = Account.__table__
    return ~exists().where(rows.c.id == _outbox.c.account_id, rows.c.status != "cancelled")


def _outcome_statement():
    # Only the worker holding the claim writes the outcome: one whose lease ran out finds the claim changed.
    return (update(_outbox).where(_outbox.c.id == bindparam("b_id"), _outbox.c.claim == bindparam("b_claim"))
            .values(status=bindparam("b_status"), sent_at=bindparam("b_sent_at"), provider=bindparam("b_provider"),
                    provider_message_id=bindparam("b_message_id"), last_error=bindparam("b_error"),
                    next_attempt_at=bindparam("b_next"), claim=None,
                    # Once sent, the recipient is not needed again: it goes. A failed row keeps it for
                    # retry_failed, unless its account was cancelled: a cancelled account's last notice
                    # keeps no phone number or address, even encrypted, whatever its outcome.
                    recipient_enc=case((bindparam("b_status") == "sent", null()),
                                       (and_(bindparam("b_status") == "failed", _live_account_missing()), null()),
                                       else_=_outbox.c.recipient_enc)))


def _record(rt: Runtime, outcomes: list[dict]) -> None:
    if outcomes:
        with rt.db.write() as db:
            db.execute(_outcome_statement(), outcomes)


def _claim(rt: Runtime, limit: int) -> list[_Job]:
    token = secrets.token_hex(16)
    with rt.db.write() as db:
        now = rt.clock.now()
        claimed_at = time.monotonic()
        query = (select(OutboxNotice)
                 .where(OutboxNotice.status.in_(("pending", "sending")), OutboxNotice.next_attempt_at <= now)
                 .order_by(OutboxNotice.next_attempt_at, OutboxNotice.id).limit(limit))
        if not rt.db.is_sqlite:  # SQLite serialises writers with BEGIN IMMEDIATE instead
            query = query.with_for_update(skip_locked=True)
        rows = db.scalars(query).all()
        lease = now + timedelta(seconds=rt.settings.notice_lease_seconds)
        jobs = []
        accounts_cache: dict[str, Any] = {}
        consent_cache: dict[str, bool] = {}
        for row in rows:
            if row.category == "marketing" and row.account_id:
                if row.account_id not in consent_cache:
                    consent_cache[row.account_id] = marketing_enabled(db, row.account_id)
                if not consent_cache[row.account_id]:
                    # Consent withdrawn after the notice was queued (COMPLIANCE A4): it is never sent.
                    row.status, row.claim, row.last_error, row.recipient_enc = "failed", None, "withdrawn", None
                    continue
            recipient_enc = row.recipient_enc
            if recipient_enc is None and row.account_id:
                # Missing at queue time: the account may have one now.
                if row.account_id not in accounts_cache:
                    accounts_cache[row.account_id] = _find_account(db, row.account_id)
                found = _recipient(rt, accounts_cache[row.account_id], row.channel)
                if found:
                    recipient_enc = row.recipient_enc = rt.keys.cipher.encrypt(found, RECIPIENT[row.channel], row.id)
            row.status, row.claim, row.attempts, row.next_attempt_at = "sending", token, row.attempts + 1, lease
            recipient = rt.keys.cipher.decrypt(recipient_enc, RECIPIENT[row.channel], row.id) if recipient_enc else None
            jobs.append(_Job(row.id, token, row.account_id, row.channel, row.template, row.params, row.category,
                             row.language, recipient, row.attempts, lease, claimed_at))
    return jobs


def _find_account(db: Session, account_id: str):
    try:
        return _account(db, account_id)
    except errors.DomainError:
        return None


def _deliver(rt: Runtime, job: _Job) -> dict:
    now = rt.clock.now()
    try:
        if not job.recipient:
            raise _Undeliverable("missing_recipient")
        params = json.loads(job.params)
        rendered = render(rt, job.template, params, job.language)
        text, headers = rendered.text, {}
        if job.category == "marketing" and job.account_id:
            url = unsubscribe_url(rt, job.account_id)
            text += "\n" + _UNSUBSCRIBE_LINE.get(job.language, _UNSUBSCRIBE_LINE[DEFAULT_LANGUAGE]).format(url=url)
            # RFC 8058: mail clients offer "unsubscribe" and POST to the one-click address themselves.
            headers = {"List-Unsubscribe": f"<{url.replace('/unsubscribe?', '/unsubscribe/one-click?')}>",
                       "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        if job.channel == "sms":
            flat = {key: _localised(value, job.language)
                    for key, value in _with_computed(rt, job.template, params).items()}
            result = rt.sms.send(SmsMessage(to=job.recipient, purpose=job.template, text=SMS_SIGNATURE + text,
                                            params=flat), now)
        else:
            result = rt.email.send(EmailMessage(to=job.recipient, purpose=job.template, subject=rendered.title,
                                                text=text, headers=headers), now)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row, never lost
        return _failure(rt, job, exc)
    log.info("notice.sent", id=job.id, channel=job.channel, template=job.template, to=_masked(job),
             provider=result.provider, message_id=result.message_id, attempt=job.attempts)
    return {"b_id": job.id, "b_claim": job.claim, "b_status": "sent", "b_sent_at": now, "b_provider": result.provider,
            "b_message_id": str(result.message_id)[:200] if result.message_id else None, "b_error": None,
            "b_next": now}


def _failure(rt: Runtime, job: _Job, exc: Exception) -> dict:
    """The outcome of a failed attempt: retried after an exponential backoff (capped), unless the
    provider says it will never work or the attempts are used up; then ``failed``, kept for operators."""
    settings = rt.settings
    retryable = bool(getattr(exc, "retryable", True))
    final = not retryable or job.attempts >= settings.notice_max_attempts
    detail = str(exc) if isinstance(exc, _Undeliverable) else f"{type(exc).__name__}: {exc}"
    detail = mask_text(" ".join(detail.split()))[:500]
    now = rt.clock.now()
    delay = min(settings.notice_retry_base_seconds * 2 ** (job.attempts - 1), settings.notice_retry_cap_seconds)
    (log.error if final else log.warning)("notice.failed", id=job.id, channel=job.channel, template=job.template,
                                          to=_masked(job), attempt=job.attempts, final=final, error=detail)
    return {"b_id": job.id, "b_claim": job.claim, "b_status": "failed" if final else "pending", "b_sent_at": None,
            "b_provider": getattr(rt.sms if job.channel == "sms" else rt.email, "name", None), "b_message_id": None,
            "b_error": detail, "b_next": now + timedelta(seconds=delay)}


def _masked(job: _Job) -> str | None:
    if not job.recipient:
        return None
    return mask_phone(job.recipient) if job.channel == "sms" else mask_email(job.recipient)


def sweep_outbox(rt: Runtime, db: Session) -> int:
    """Retention: sent and failed notices (an encrypted recipient each) go after notice_retention_days."""
    cutoff = rt.clock.now() - timedelta(days=rt.settings.notice_retention_days)
    return db.execute(delete(OutboxNotice).where(OutboxNotice.status.in_(("sent", "failed")),
                                                 OutboxNotice.created_at < cutoff)).rowcount


def acting(staff_id: str | None) -> dict[str, str | None]:
    """Who an operator action is recorded as: the staff member from the console, the system from the CLI."""
    return {"actor_type": "staff" if staff_id else "system", "actor_id": staff_id}


def retry_failed(rt: Runtime, origin: audit.Origin, *, since: datetime | None = None,
                 staff_id: str | None = None) -> int:
    """Operators: send failed notices again (after fixing a template or the provider settings)."""
    now = rt.clock.now()
    with rt.db.write() as db:
        condition = OutboxNotice.status == "failed"
        if since is not None:
            condition &= OutboxNotice.created_at >= since
        count = db.execute(update(OutboxNotice).where(condition)
                           .values(status="pending", attempts=0, next_attempt_at=now)).rowcount
        audit.record(db, at=now, action="notices.retried", origin=origin,
                     **acting(staff_id), details={"notices": count})
    return count


def outbox_stats(rt: Runtime) -> dict[str, int]:
    with rt.db.read() as db:
        rows = db.execute(select(OutboxNotice.status, func.count()).group_by(OutboxNotice.status)).all()
    return {status: count for status, count in rows}


def list_outbox(rt: Runtime, *, status: str | None = None, limit: int = 50) -> list[dict]:
    """For operators: the newest outbox rows, recipients masked, no parameters."""
    query = select(OutboxNotice).order_by(OutboxNotice.id.desc()).limit(min(max(limit, 1), 200))
    if status:
        query = query.where(OutboxNotice.status == status)
    with rt.db.read() as db:
        rows = db.scalars(query).all()
        return [outbox_view(rt, row) for row in rows]


def outbox_view(rt: Runtime, row: OutboxNotice) -> dict:
    recipient = (rt.keys.cipher.decrypt(row.recipient_enc, RECIPIENT[row.channel], row.id)
                 if row.recipient_enc else None)
    masked = (mask_phone(recipient) if row.channel == "sms" else mask_email(recipient)) if recipient else None
    return {"id": row.id, "account_id": row.account_id, "channel": row.channel, "template": row.template,
            "category": row.category, "to": masked, "status": row.status, "attempts": row.attempts,
            "created_at": rfc3339(row.created_at), "sent_at": rfc3339(row.sent_at), "provider": row.provider,
            "provider_message_id": row.provider_message_id, "last_error": row.last_error,
            "next_attempt_at": rfc3339(row.next_attempt_at) if row.status in ("pending", "sending") else None}
