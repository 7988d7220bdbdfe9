"""Staff work on user accounts: search, detail, reveal, enforcement actions (COMPLIANCE R3, I3, D5).

Personal data is shown masked; a full value is revealed only with a typed reason, and the reveal is
audited without the value (PIPL Art. 51). Every action has a reason, is recorded in
``account_actions`` and the audit log in one transaction, and is told to the user (§五(四))."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import profile
from passport.accounts import service as accounts
from passport.accounts.public import avatar_url
from passport.admin.models import AccountAction, Staff
from passport.admin.service import StaffPrincipal
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.cancellation.models import CancellationRequest
from passport.clock import as_utc, china_time, rfc3339
from passport.identity.email import mask_email
from passport.identity.phone import mask_phone
from passport.identity.resident_id import mask_id_number
from passport.notify import outbox
from passport.runtime import Runtime
from passport.security.tokens import b64, keyed_digest, same
from passport.sessions import service as sessions
from passport.work import Work, unit_of_work

ACTIONS = ("warn", "require_correction", "restrict", "suspend", "unsuspend", "terminate")
# The status each action leaves; None keeps the current one.
RESULTING_STATUS = {"warn": None, "require_correction": None, "restrict": "restricted", "suspend": "suspended",
                    "unsuspend": "active", "terminate": "terminated"}
UNTIL_REQUIRED = frozenset({"require_correction"})
CORRECTABLE = ("nickname", "bio", "avatar")
ESCALATIONS = ("restrict", "suspend", "terminate")
REVOKES_SESSIONS = frozenset({"suspend", "terminate"})
LIFTABLE = frozenset({"suspended", "restricted"})
REVEAL_FIELDS = {"phone": accounts.PHONE_FIELD, "email": accounts.EMAIL_FIELD}
REASON_MAX = 500
REVEAL_REASON_MIN = 5
PAGE_MAX = 100
RECENT_ACTIVITY = 20
_ID_NUMBER = re.compile(r"\d{17}[\dXx]")
_ACTION_NAMES = {"reset_field": "重置账号信息", "warn": "警告", "require_correction": "限期改正",
                 "restrict": "限制使用", "suspend": "暂停使用", "unsuspend": "恢复正常使用", "terminate": "终止服务",
                 "refuse_registration": "拒绝再次注册"}


@dataclass(frozen=True)
class ActionTaken:
    action_id: int
    account: dict
    revoked_sessions: int


def _summary(rt: Runtime, account) -> dict:
    phone = accounts.phone_of(rt, account)
    email = rt.keys.cipher.decrypt(account.email_enc, accounts.EMAIL_FIELD, account.id) if account.email_enc else None
    return {"id": account.id, "kind": account.kind, "status": account.status, "nickname": account.nickname,
            "phone": mask_phone(phone) if phone else None, "email": mask_email(email) if email else None,
            "status_reason": account.status_reason, "status_until": rfc3339(account.status_until),
            "created_at": rfc3339(account.created_at), "real_name": accounts.view(rt, account)["real_name"],
            "bio": account.bio, "avatar_url": avatar_url(account), "pending_review": accounts.pending_review(account)}


def id_number_index(rt: Runtime, id_number: str) -> bytes:
    """The blind index of a resident ID number as real-name verification stores it (upper-case X)."""
    return rt.keys.blind_index("id_number", id_number.strip().upper())


def id_number_lookup(rt: Runtime, id_number: str) -> tuple[bytes, bytes]:
    """``id_number_index`` under the current and the previous key (the same twice unless blind-index
    keys rotate): a search matches either."""
    return rt.keys.blind_index.lookup("id_number", id_number.strip().upper())


def search(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, *, phone: str | None = None,
           status: str | None = None, id_number: str | None = None, offset: int = 0, limit: int = 20) -> dict:
    """Accounts by phone (through the blind index), ID number or status, masked, newest first. A search
    by phone or ID number is audited (``account.searched``, PIPL Art. 51) with the value masked and the
    accounts it found."""
    condition = []
    searched: dict[str, str] = {}
    if id_number:
        if not _ID_NUMBER.fullmatch(id_number.strip()):
            raise errors.invalid("invalid_id_number", "Enter an 18-character resident ID number.", "id_number")
        condition.append(accounts.Account.id_number_bidx.in_(id_number_lookup(rt, id_number)))
        searched["id_number"] = mask_id_number(id_number.strip().upper())
    if phone:
        target = accounts.sms_target(rt, phone)
        condition.append(accounts.Account.phone_bidx.in_(target.lookup))
        searched["phone"] = mask_phone(target.value)
    if status:
        if status not in accounts.STATUSES:
            raise errors.invalid("invalid_status", "Unknown account status.", "status")
        condition.append(accounts.Account.status == status)
    if not condition:
        raise errors.invalid("filter_required", "Search by phone, ID number or status.", "phone")
    limit = max(1, min(limit, PAGE_MAX))
    offset = max(0, offset)
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        db = work.db
        total = db.scalar(select(func.count()).select_from(accounts.Account).where(*condition))
        rows = db.scalars(select(accounts.Account).where(*condition)
                          .order_by(accounts.Account.created_at.desc(), accounts.Account.id)
                          .offset(offset).limit(limit)).all()
        items = [_summary(rt, row) for row in rows]
        if searched:
            work.audit("account.searched", details=searched | (({"status": status}) if status else {})
                       | {"total": total, "accounts": [item["id"] for item in items]})
    return {"items": items, "total": total, "offset": offset, "limit": limit}


def _history(db: Session, account_id: str) -> list[dict]:
    rows = db.execute(select(AccountAction, Staff.login).join(Staff, Staff.id == AccountAction.staff_id)
                      .where(AccountAction.account_id == account_id)
                      .order_by(AccountAction.id.desc())).all()
    return [{"id": a.id, "action": a.action, "reason": a.reason, "until": rfc3339(a.until), "staff": login,
             "created_at": rfc3339(a.created_at)} for a, login in rows]


def detail(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, account_id: str) -> dict:
    """What staff see of an account (masked); each look is audited (``account.viewed``, PIPL Art. 51)."""
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        db = work.db
        account = accounts.get(db, account_id)
        summary = _summary(rt, account)
        consents = [{"kind": c.kind, "version": c.version, "accepted_at": rfc3339(c.accepted_at),
                     "channel": c.channel} for c in agreements.consents_of(db, account_id)]
        activity = audit.activity_of(db, account_id, limit=RECENT_ACTIVITY)
        history = _history(db, account_id)
        work.audit("account.viewed", subject=("account", account_id))  # after the read: not shown to itself
    live = sessions.list_sessions(rt, sessions.Principal(account_id, "", account.status))
    return summary | {"sessions": [{k: v for k, v in s.items() if k != "current"} for s in live],
                      "consents": consents, "activity": activity, "actions": history}


def clean_reason(raw: str | None, minimum: int = 1) -> str:
    reason = (raw or "").strip()
    if len(reason) < minimum:
        message = ("A reason is required." if minimum <= 1
                   else "A reason of at least 5 characters is required.")
        raise errors.invalid("reason_required", message, "reason")
    if len(reason) > REASON_MAX:
        raise errors.invalid("reason_too_long", "The reason must be at most 500 characters.", "reason")
    return reason


def reveal(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, account_id: str, *, field: str,
           reason: str | None) -> str:
    """The full phone or email, for a typed reason; the audit event names the field, not the value."""
    if field not in REVEAL_FIELDS:
        raise errors.invalid("invalid_field", "Only the phone or the email can be revealed.", "field")
    reason = clean_reason(reason, REVEAL_REASON_MIN)
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        account = accounts.get(work.db, account_id)
        encrypted = account.phone_enc if field == "phone" else account.email_enc
        if encrypted is None:
            raise errors.not_found(field)
        value = rt.keys.cipher.decrypt(encrypted, REVEAL_FIELDS[field], account.id)
        work.audit("account.revealed", subject=("account", account_id),
                   details={"field": field, "reason": reason, "staff_login": staff.login})
    return value


def _conflict(code: str, title: str) -> errors.DomainError:
    return errors.DomainError(code, title, 409)


def _check(action: str, status: str, until: datetime | None, now: datetime) -> None:
    if action not in ACTIONS:
        raise errors.invalid("invalid_action", "Unknown account action.", "action")
    if action in UNTIL_REQUIRED:
        if until is None:
            raise errors.invalid("until_required", "This action needs an end time or deadline.", "until")
        if as_utc(until) <= now:
            raise errors.invalid("until_in_past", "The end time or deadline must be in the future.", "until")
    elif until is not None and as_utc(until) <= now:
        raise errors.invalid("until_in_past", "The end time or deadline must be in the future.", "until")
    if status == "cancelled":
        raise _conflict("account_cancelled", "The account has been cancelled.")
    if status == "terminated":
        raise _conflict("invalid_transition", "This action is not possible in the account's current status.")
    if action == "unsuspend" and status not in LIFTABLE:
        raise _conflict("invalid_transition", "This action is not possible in the account's current status.")
    # The owner froze it (stolen account, C4): only the owner's recovery unfreezes it, so a
    # suspension or restriction, whose lifting means "active", must not stand over the freeze.
    if status == "frozen" and action in ("restrict", "suspend"):
        raise _conflict("invalid_transition", "This action is not possible in the account's current status.")


def act(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, account_id: str, *, action: str,
        reason: str | None, until: datetime | None = None, field: str | None = None,
        escalate_to: str | None = None) -> ActionTaken:
    reason = clean_reason(reason)
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id), at=now) as work:
        row, account, revoked = apply(work, staff.staff_id, staff.login, account_id, action=action, reason=reason,
                                      until=until, field=field, escalate_to=escalate_to)
        taken = ActionTaken(row.id, _summary(rt, account), revoked)
    return taken


def field_digest(account, field: str | None) -> str | None:
    """A digest of the field's value and of a change of it waiting for review: a correction deadline is
    met when it differs (the owner changed the field, or asked to)."""
    if field is None:
        return None
    value = (getattr(account, field, None), getattr(account, f"{field}_pending", None))
    return hashlib.sha256(repr(value).encode("utf-8")).hexdigest()


def apply(work: Work, staff_id: str, staff_login: str, account_id: str, *, action: str, reason: str,
          until: datetime | None = None, review_id: str | None = None, field: str | None = None,
          escalate_to: str | None = None) -> tuple[AccountAction, accounts.Account, int]:
    """One action on an account in the caller's unit of work (the staff action, a report's decision,
    a missed correction deadline): the status through ``accounts.set_status``, the ``account_actions``
    row, the audit event and the notice with the reason and the appeal link (§五(四)). A suspension
    without ``until`` lasts until lifted. Returns the row, the account and the sessions ended."""
    rt, db, now = work.rt, work.db, work.at
    until = as_utc(until) if until is not None else None
    if action in ("unsuspend", "terminate", "warn"):
        until = None
    if action == "require_correction":
        if field is not None and field not in CORRECTABLE:
            raise errors.invalid("invalid_field", "Unknown account field.", "field")
        escalate_to = escalate_to or "restrict"
        if escalate_to not in ESCALATIONS:
            raise errors.invalid("invalid_escalation", "A missed deadline escalates to restrict, suspend or "
                                 "terminate.", "escalate_to")
    else:
        field = escalate_to = None
    # Locked in the order withdrawal and finalisation lock them (the pending cancellation request,
    # then the account), so that one at the same time waits for this one.
    pending = db.scalars(select(CancellationRequest).where(
        CancellationRequest.account_id == account_id, CancellationRequest.status == "cooling_off")
        .with_for_update()).first()
    db.execute(select(accounts.Account.id).where(accounts.Account.id == account_id).with_for_update())
    account = accounts.get(db, account_id)
    _check(action, account.status, until, now)
    previous = account.status
    target = RESULTING_STATUS[action]
    kept_for = None
    if target == "restricted" and previous == "cancelling" and pending is not None:
        # The owner's cancellation stands (NDSR Art. 23): the account stays ``cancelling`` and the
        # restriction is what a withdrawal gives back, so no second request can be made over it.
        kept_for, pending.previous_status, target = pending, target, "cancelling"
    # The row is locked, so the status read is the one written over; the condition backs that up.
    if target is not None and not accounts.set_status(
            db, account_id, target, expected=previous, now=now, reason=None if target == "active" else reason,
            until=None if target == "active" else until):
        raise _conflict("invalid_transition", "This action is not possible in the account's current status.")
    revoked = sessions.revoke_all(rt, db, account_id) if action in REVOKES_SESSIONS else 0
    row = AccountAction(account_id=account_id, action=action, reason=reason, until=until, staff_id=staff_id,
                        created_at=now, from_status=previous, review_id=review_id, field=field,
                        field_digest=field_digest(account, field), escalate_to=escalate_to)
    db.add(row)
    db.flush()
    work.audit(f"account.action.{action}", subject=("account", account_id),
               details={"reason": reason, "until": rfc3339(until), "from_status": previous,
                        "to_status": account.status, "revoked_sessions": revoked, "action_id": row.id,
                        "staff_login": staff_login}
               | ({"review": review_id} if review_id else {})
               | ({"field": field, "escalate_to": escalate_to} if action == "require_correction" else {})
               | ({"cancellation_request": kept_for.id, "status_after_withdrawal": "restricted"}
                  if kept_for is not None else {}))
    _notice(work, account, action, reason, until, row.id)
    # Again after the commit: a request between revoke_all's drop and the commit may have cached a row.
    work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
    return row, account, revoked


def record_reset(work: Work, staff_id: str, account_id: str, field: str, reason: str,
                 review_id: str | None) -> AccountAction:
    """The history row of a field reset done by ``accounts.profile.reset_account_info`` (which audits
    and tells the owner): it shows in the account's history and can be appealed (a reversal does not
    bring the old value back)."""
    account = accounts.get(work.db, account_id)
    row = AccountAction(account_id=account_id, action="reset_field", reason=reason, staff_id=staff_id,
                        created_at=work.at, from_status=account.status, review_id=review_id, field=field)
    work.db.add(row)
    work.db.flush()
    return row


def record_refusal(work: Work, staff_id: str, account_id: str, reason: str, review_id: str | None, *,
                   until: datetime) -> AccountAction:
    """The history row of a refusal of re-registration (the blind indexes are kept by
    ``accounts.refusals``); the owner is told with the appeal link."""
    account = accounts.get(work.db, account_id)
    row = AccountAction(account_id=account_id, action="refuse_registration", reason=reason, until=until,
                        staff_id=staff_id, created_at=work.at, from_status=account.status, review_id=review_id)
    work.db.add(row)
    work.db.flush()
    work.audit("account.action.refuse_registration", subject=("account", account_id),
               details={"reason": reason, "until": rfc3339(until), "action_id": row.id, "review": review_id})
    _notice(work, account, "refuse_registration", reason, until, row.id)
    return row


def appeal_token(rt: Runtime, action_id: int) -> str:
    """``<action id>.<MAC>``: the appeal link of an action's notice. Signed, so nothing about it is
    stored; it lets whoever holds the notice appeal that action, signed in or not (a suspended or
    terminated account cannot sign in, and must still be able to appeal)."""
    return f"{action_id}.{b64(keyed_digest(rt.keys.secret, 'account_action.appeal', str(action_id))[:16])}"


def action_of_token(rt: Runtime, token: str | None) -> int | None:
    raw, _, _mac = (token or "").partition(".")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not same(appeal_token(rt, int(raw)), token or ""):
        return None
    return int(raw)


def appeal_link(rt: Runtime, action_id: int) -> dict[str, str]:
    url = f"{rt.settings.base_url.rstrip('/')}/appeals/new?token={appeal_token(rt, action_id)}"
    return {"zh-CN": f"如有异议，可在此提出申诉：{url}", "en": f"If you disagree, you can appeal here: {url}"}


def _appeal_params(rt: Runtime, params: dict) -> dict:
    """The link is computed whenever the notice is rendered, from the action id it stores: the outbox
    and the inbox never hold it."""
    if "appeal" in params:
        return {}
    action_id = str(params.get("action_id", ""))
    known = action_id.isascii() and action_id.isdigit()
    return {"appeal": appeal_link(rt, int(action_id)) if known else {"zh-CN": "", "en": ""}}


outbox.compute_params("notice_account_action", _appeal_params)
outbox.compute_params("correction_reminder", _appeal_params)


def _notice(work: Work, account, action: str, reason: str, until: datetime | None, action_id: int) -> None:
    """The user is told of every action, with its reason and where to appeal it (§五(四)); the time is
    Beijing time. Inbox and SMS through the outbox, in the action's unit of work."""
    deadline = {"zh-CN": "", "en": ""}
    if until is not None:
        when = china_time(until)
        correction = action == "require_correction"
        deadline = {"zh-CN": f"{'改正期限' if correction else '截止时间'}：{when}（北京时间）。",
                    "en": f"{'Correct by' if correction else 'Until'}: {when} (Beijing time)."}
    elif action == "suspend":
        deadline = {"zh-CN": "暂停期限：直至解除。", "en": "Until lifted."}
    work.notify(account.id, "notice_account_action", {
        "action": action, "action_name": {"zh-CN": _ACTION_NAMES[action], "en": action.replace("_", " ")},
        "reason": reason, "deadline": deadline, "until": rfc3339(until) or "",
        "action_id": "" if action == "unsuspend" else str(action_id)})


def reset_info(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, account_id: str, *, field: str,
               reason: str | None) -> bool:
    """§五(一): staff reset a nickname, bio or avatar to its default with a reason, through
    ``profile.reset_account_info`` (audited ``account.info_reset``, the owner told in the inbox).
    False when the field already had its default."""
    reason = clean_reason(reason)
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        return profile.reset_account_info(rt, work, account_id, field, reason=reason, staff_id=staff.staff_id)


# --- correction deadlines (issue 18) ----------------------------------------------------------------

REMIND_BEFORE = timedelta(days=1)
_SETTLED_STATUSES = frozenset({"cancelled", "terminated", "cancelling"})


def _corrected(account, row: AccountAction) -> bool:
    """The field named by the deadline was changed (or a change is waiting for review) since it was set."""
    return row.field is not None and field_digest(account, row.field) != row.field_digest


def settle_corrections(rt: Runtime, limit: int = 50) -> dict[str, int]:
    """The worker's round: one day before a correction deadline the owner is reminded; a deadline
    passed without the change escalates to the action the reviewer chose when setting it (taken in
    that reviewer's name, with the reason "deadline missed"); a deadline met is closed."""
    now = rt.clock.now()
    done = {"reminded": 0, "escalated": 0, "corrected": 0}
    with rt.db.read() as db:
        due = db.scalars(select(AccountAction.id).where(
            AccountAction.action == "require_correction", AccountAction.settled_at.is_(None),
            AccountAction.reversed_at.is_(None), AccountAction.until <= now + REMIND_BEFORE)
            .order_by(AccountAction.until).limit(limit)).all()
    for action_id in due:
        outcome = _settle_one(rt, action_id, now)
        if outcome:
            done[outcome] += 1
    return done


def _settle_one(rt: Runtime, action_id: int, now: datetime) -> str | None:
    with unit_of_work(rt, audit.Origin(channel="worker"), actor=("system", None), at=now) as work:
        db = work.db
        row = db.scalars(select(AccountAction).where(AccountAction.id == action_id).with_for_update()).first()
        if row is None or row.settled_at is not None or row.reversed_at is not None:
            return None
        account = accounts.get(db, row.account_id)
        if as_utc(row.until) > now:
            if row.reminded_at is not None or _corrected(account, row):
                return None
            row.reminded_at = now
            work.notify(account.id, "correction_reminder", {"reason": row.reason, "until": china_time(row.until),
                                                            "action_id": str(row.id)})
            work.audit("account.correction_reminded", subject=("account", account.id), details={"action_id": row.id})
            return "reminded"
        row.settled_at = now
        if _corrected(account, row) or account.status in _SETTLED_STATUSES:
            work.audit("account.correction_met", subject=("account", account.id),
                       details={"action_id": row.id, "field": row.field, "status": account.status})
            return "corrected"
        staff = db.get(Staff, row.staff_id)
        reason = f"逾期未改正（{row.reason}）"
        try:
            escalation, _, _ = apply(work, row.staff_id, staff.login if staff else "system", account.id,
                                     action=row.escalate_to or "restrict", reason=reason, review_id=row.review_id)
        except errors.DomainError as refused:
            work.audit("account.correction_escalation_refused", subject=("account", account.id), result="denied",
                       details={"action_id": row.id, "code": refused.code, "status": account.status})
            return None
        work.audit("account.correction_escalated", subject=("account", account.id),
                   details={"action_id": row.id, "escalation": escalation.id, "to": escalation.action})
        return "escalated"
