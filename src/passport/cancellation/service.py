"""Account cancellation with a cooling-off period (COMPLIANCE D1-D3), the personal-data export and the
correction of the phone number (D4).

A request needs the password and an SMS code (purpose ``cancel_account``); the account turns
``cancelling`` and its owner may withdraw until ``effective_at`` (the cooling-off,
``PASSPORT_CANCELLATION_COOLING_OFF_DAYS``). Then the worker finalises it in one transaction: every
personal field of the account and every blind index of its phone and email go, its sessions and codes
are deleted, the other domains erase theirs (notices, real-name data), and the row stays as an
anonymous tombstone. A worker killed half way leaves nothing half done: the transaction rolls back and
the next round does it all.

What stays, de-identified (§三(五), §八(二), PIPL Art. 47): the audit log (COMPLIANCE L1, at least six
months by law; ``PASSPORT_AUDIT_RETENTION_DAYS``) and the consent ledger (A2). Neither can be edited:
the audit log is hash-chained, the ledger append-only. They are de-identified by what they point at:
account ids are random (uuid4) pseudonyms, the details are masked when written (no full phone, ID
number or email), and the tombstone they name keeps no personal data, so nothing links the pseudonym
back to a person. The audit retention sweep removes the records when their period ends.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import profile
from passport.accounts import service as accounts
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.cancellation.models import CancellationRequest
from passport.clock import as_utc, china_time, rfc3339
from passport.credentials import codes
from passport.credentials import phone as phone_change
from passport.credentials import service as credentials
from passport.notify import export as notify_export
from passport.passwordless import passkeys, qr
from passport.realname import service as realname
from passport.realname.models import Organization, OrganizationAdmin
from passport.runtime import Runtime
from passport.sessions import devices
from passport.sessions import service as sessions
from passport.work import SYSTEM, Work, unit_of_work

log = structlog.get_logger("passport.cancellation")

COOLING_OFF = "cooling_off"
# Who may ask: a platform restriction does not take away the right to leave (NDSR Art. 23); the status
# comes back if the owner withdraws. Frozen, suspended and terminated accounts are refused.
REQUESTABLE = frozenset({"active", "restricted"})
REFUSED = {
    "frozen": ("account_frozen", "This account is frozen. Recover it with your phone and recovery key.", 403),
    "suspended": ("account_suspended", "This account is suspended.", 403),
    "terminated": ("account_terminated", "This account has been terminated.", 403),
    "cancelling": ("cancellation_pending", "A cancellation request is already pending for this account.", 409),
    "cancelled": ("account_cancelled", "This account has been cancelled.", 409),
}
# Statuses set by the platform (or the owner's freeze) that stop a finalisation; any other status the
# account took during the cooling-off (a restriction, one lifted) leaves the owner's request standing.
PLATFORM_HOLDS = frozenset({"frozen", "suspended", "terminated"})
TOMBSTONE_NICKNAME = "已注销用户"
_WORKER = audit.Origin(channel="worker")
def _refusal(status: str) -> errors.DomainError:
    code, title, http_status = REFUSED.get(
        status, ("cancellation_not_allowed", "This account cannot be cancelled in its current status.", 409))
    return errors.DomainError(code, title, http_status)


# --- request, state, withdrawal ----------------------------------------------------------------------

def _view(request: CancellationRequest, now: datetime) -> dict[str, Any]:
    effective = as_utc(request.effective_at)
    return {"id": request.id, "status": request.status, "requested_at": rfc3339(request.requested_at),
            "effective_at": rfc3339(effective), "closed_at": rfc3339(request.closed_at),
            "seconds_left": max(0, int((effective - now).total_seconds()))}


def _pending(db: Session, account_id: str, *, lock: bool = False) -> CancellationRequest | None:
    query = select(CancellationRequest).where(CancellationRequest.account_id == account_id,
                                              CancellationRequest.status == COOLING_OFF)
    return db.scalars(query.with_for_update() if lock else query).first()


def request_cancellation(rt: Runtime, origin: audit.Origin, account_id: str, *, password: str,
                         code: str) -> dict[str, Any]:
    """Re-authenticate with the password and an SMS code (purpose ``cancel_account``), then start the
    cooling-off. The one condition (NDSR Art. 23 allows no others): the account must not be the last
    administrator of a verified organisation, which it hands over or dissolves first."""
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
        if account.status not in REQUESTABLE:
            raise _refusal(account.status)
        target = codes.own_target(rt, account)
        blockers = realname.cancellation_blockers(rt, db, account_id)
    if blockers:
        raise _blocked(blockers)
    now = rt.clock.now()
    if not credentials.password_matches(rt, account, password):
        _record_refused_request(rt, origin, account_id, now, "wrong_password")
        raise credentials.wrong_password()
    effective_at = now + timedelta(days=rt.settings.cancellation_cooling_off_days)
    try:
        request = _start_cooling_off(rt, origin, account, target, code, now, effective_at)
    except IntegrityError:  # another request won the race to the one cooling_off row
        raise _refusal("cancelling") from None
    log.info("cancellation.requested", request=request.id, effective_at=rfc3339(effective_at))
    return _view(request, now) | {"status": COOLING_OFF}


def _start_cooling_off(rt: Runtime, origin: audit.Origin, account, target: accounts.Target, code: str,
                       now: datetime, effective_at: datetime) -> CancellationRequest:
    account_id = account.id
    refusal = None
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        db = work.db
        blockers = realname.cancellation_blockers(rt, db, account_id)
        if blockers:  # became the last administrator meanwhile: refused before the code is used
            raise _blocked(blockers)
        # One cooling-off at a time: the account may have left ``cancelling`` meanwhile (a suspension
        # lifted), but its request still stands. Refused before the code is used; the partial unique
        # index on cancellation_requests(account_id) WHERE status = 'cooling_off' backs this up.
        outcome = None if _pending(db, account_id, lock=True) is not None else codes.redeem_code(
            rt, db, target, codes.Purpose.CANCEL_ACCOUNT, code or "")
        if outcome is None:
            refusal = _refusal("cancelling")
            _refused_request(work, account_id, "cancelling")
        elif outcome is not codes.Redeemed.OK:
            _refused_request(work, account_id, "invalid_code")
        else:
            # The status moves only from the one read above: of two requests at once, one wins.
            status = account.status
            moved = accounts.set_status(db, account_id, "cancelling", expected=status, now=now)
            if not moved:
                current = db.scalar(select(accounts.Account.status).where(accounts.Account.id == account_id))
                refusal = _refusal(current)
                _refused_request(work, account_id, current)
            else:
                request = CancellationRequest(account_id=account_id, status=COOLING_OFF, previous_status=status,
                                              requested_at=now, effective_at=effective_at,
                                              reminded_at=now if _reminder_due(effective_at, now) else None)
                db.add(request)
                db.flush()
                work.audit("cancellation.requested", subject=("account", account_id),
                           details={"request": request.id, "effective_at": rfc3339(effective_at),
                                    "previous_status": status})
                work.notify(account_id, "cancellation_requested", {"effective_at": china_time(effective_at)},
                            channels=("inbox", "sms"))
                work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
    if outcome is None:
        raise refusal
    if outcome is not codes.Redeemed.OK:
        raise credentials.wrong_code()
    if refusal is not None:
        raise refusal
    return request


def _blocked(blockers: list[dict[str, Any]]) -> errors.DomainError:
    return errors.DomainError(
        "cancellation_blocked",
        "You are the last administrator of a verified organisation. Hand it over or dissolve it first.", 409,
        extra={"organizations": blockers})


def _reminder_due(effective_at: datetime, now: datetime) -> bool:
    """A cooling-off of a day or less has no "one day left" notice: the request notice says when."""
    return effective_at - timedelta(days=1) <= now


def _refused_request(work: Work, account_id: str, reason: str) -> None:
    work.audit("cancellation.request", actor=("user", account_id), subject=("account", account_id),
               result="denied" if reason not in ("wrong_password", "invalid_code") else "failed",
               details={"reason": reason})


def _record_refused_request(rt: Runtime, origin: audit.Origin, account_id: str, now: datetime, reason: str) -> None:
    with unit_of_work(rt, origin, at=now) as work:
        _refused_request(work, account_id, reason)


def current(rt: Runtime, account_id: str) -> dict[str, Any]:
    """The pending request (``GET /me/cancellation``); 404 when there is none."""
    with rt.db.read() as db:
        request = _pending(db, account_id)
    if request is None:
        raise errors.not_found("cancellation")
    return _view(request, rt.clock.now())


def pending_of(rt: Runtime, account_id: str) -> dict[str, Any] | None:
    with rt.db.read() as db:
        request = _pending(db, account_id)
    return _view(request, rt.clock.now()) if request else None


def withdraw(rt: Runtime, origin: audit.Origin, account_id: str) -> None:
    """Withdraw the pending request: the account gets back the status it had. 404 when nothing is
    pending, or when the worker has finalised it already."""
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        now = work.at
        request = _pending(work.db, account_id, lock=True)
        if request is None:
            raise errors.not_found("cancellation")
        request.status, request.closed_at = "withdrawn", now
        # Only from ``cancelling``: a status the platform set meanwhile stays.
        accounts.set_status(work.db, account_id, request.previous_status, expected="cancelling", now=now)
        work.audit("cancellation.withdrawn", subject=("account", account_id),
                   details={"request": request.id, "status": request.previous_status})
        work.notify(account_id, "cancellation_withdrawn", {"time": china_time(now)}, channels=("inbox", "sms"))
        work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
    log.info("cancellation.withdrawn", request=request.id)


def blockers_of(rt: Runtime, account_id: str) -> list[dict[str, Any]]:
    with rt.db.read() as db:
        return realname.cancellation_blockers(rt, db, account_id)


# --- the worker: reminders and finalisation ---------------------------------------------------------

def finalise_due(rt: Runtime, limit: int = 50) -> int:
    """Worker job: send the "one day left" notices that are due, then finalise up to ``limit``
    requests whose cooling-off has ended, one transaction each; returns how many were finalised.
    On PostgreSQL each worker claims its rows with FOR UPDATE SKIP LOCKED, so any number can run."""
    now = rt.clock.now()
    _send_reminders(rt, now, limit)
    done, failed = 0, set()
    while done + len(failed) < limit:
        try:
            finished = _finalise_next(rt, now, failed)
        except Exception as exc:  # noqa: BLE001 - one broken account must not stop the others
            request_id = getattr(exc, "request_id", None)
            log.error("cancellation.finalise_failed", request=request_id, error=type(exc).__name__, detail=str(exc))
            if request_id is None:
                raise
            failed.add(request_id)
            continue
        if finished is None:
            break
        done += 1
    return done


def _send_reminders(rt: Runtime, now: datetime, limit: int) -> None:
    with unit_of_work(rt, _WORKER, actor=SYSTEM, at=now) as work:
        due = work.db.scalars(select(CancellationRequest)
                         .where(CancellationRequest.status == COOLING_OFF, CancellationRequest.reminded_at.is_(None),
                                CancellationRequest.effective_at <= now + timedelta(days=1),
                                CancellationRequest.effective_at > now)
                         .order_by(CancellationRequest.effective_at).limit(limit)
                         .with_for_update(skip_locked=True)).all()
        for request in due:
            request.reminded_at = now
            work.notify(request.account_id, "cancellation_reminder",
                        {"effective_at": china_time(request.effective_at)}, channels=("inbox", "sms"))
            work.audit("cancellation.reminded", subject=("account", request.account_id),
                       details={"request": request.id})


class _FinaliseFailed(Exception):
    def __init__(self, request_id: str, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.request_id = request_id


def _finalise_next(rt: Runtime, now: datetime, skip: set[str]) -> str | None:
    """Claim one due request and finalise it in one unit of work. Returns its id, or None when none
    is due (or every due one is claimed by another worker)."""
    with unit_of_work(rt, _WORKER, actor=SYSTEM, at=now) as work:
        query = (select(CancellationRequest)
                 .where(CancellationRequest.status == COOLING_OFF, CancellationRequest.effective_at <= now)
                 .order_by(CancellationRequest.effective_at).limit(1).with_for_update(skip_locked=True))
        if skip:
            query = query.where(CancellationRequest.id.not_in(skip))
        request = work.db.scalars(query).first()
        if request is None:
            return None
        try:
            _finalise(work, request)
        except Exception as exc:
            raise _FinaliseFailed(request.id, exc) from exc
        return request.id


def _step(rt: Runtime, request: CancellationRequest, step: str) -> None:
    log.debug("cancellation.finalise_step", request=request.id, step=step)


# What domains above this one keep about an account (single sign-on's app grants; reports, actions and
# appeals): they add a section
# to the export and erase their rows at finalisation through hooks registered when they are imported.
ExportSection = Callable[[Runtime, Session, str], Any]
_export_sections: dict[str, ExportSection] = {}
_finalisers: list[Callable[[Work, str], None]] = []


def export_section(name: str) -> Callable[[ExportSection], ExportSection]:
    def register(section: ExportSection) -> ExportSection:
        _export_sections[name] = section
        return section
    return register


def on_finalise(eraser: Callable[[Work, str], None]) -> Callable[[Work, str], None]:
    _finalisers.append(eraser)
    return eraser


def _finalise(work: Work, request: CancellationRequest) -> None:
    rt, db, now = work.rt, work.db, work.at
    account = db.scalars(select(accounts.Account).where(accounts.Account.id == request.account_id)
                         .with_for_update()).one()
    if account.status in PLATFORM_HOLDS:
        # The platform suspended or terminated the account during the cooling-off (its records may
        # be evidence): the request lapses, and the owner is told.
        request.status, request.closed_at = "void", now
        work.audit("cancellation.void", subject=("account", account.id),
                   details={"request": request.id, "status": account.status})
        work.notify(account.id, "cancellation_void", {}, channels=("inbox", "sms"))
        log.info("cancellation.void", request=request.id, status=account.status)
        return
    if _void_if_blocked(work, request, account):
        return
    account_id = account.id
    # The bound phone and email, and the codes the account asked for: a pending address is not its own
    # until proved, and the codes others asked for there are theirs (a live one must keep working).
    targets = [b for b in (account.phone_bidx, account.email_bidx) if b]
    # Notices first: their erasure drops what is still queued for the account, and the last notice
    # is queued after it, while the phone is still there to address it (the outbox holds the
    # recipient only encrypted, never in clear or as a blind index).
    notify_export.erase_account(rt, db, account_id)
    _step(rt, request, "notices")
    work.notify(account_id, "cancellation_finalised", {"time": china_time(now)}, channels=("sms",))
    _step(rt, request, "final_notice")
    realname.erase_account(rt, db, account_id)
    profile.erase_pending(db, account_id, now, work.origin)
    _step(rt, request, "real_name")
    erased_sessions = sessions.erase_sessions(rt, db, account_id)
    _step(rt, request, "sessions")
    erased_passkeys = passkeys.erase_account(db, account_id)
    qr.erase_account(db, account_id)
    _step(rt, request, "passwordless")
    for eraser in _finalisers:
        eraser(work, account_id)
    _step(rt, request, "other_domains")
    erased_codes = codes.erase_codes(db, targets, account_id)
    _step(rt, request, "codes")
    phone_change.erase_account(work, account_id)
    _step(rt, request, "phone_changes")
    _anonymise(db, account, now)
    db.flush()
    _step(rt, request, "account")
    request.status, request.closed_at = "finalised", now
    # Pending instructions the user gave before (§八(四)) are rows of other domains that name the
    # account id; they stay with the tombstone and are not revoked here.
    work.audit("account.cancelled", subject=("account", account_id),
               details={"request": request.id, "sessions_deleted": erased_sessions, "codes_deleted": erased_codes,
                          "passkeys_deleted": erased_passkeys,
                          "consents_kept": len(agreements.consents_of(db, account_id))})
    log.info("cancellation.finalised", request=request.id)


BLOCKED_NOTICE = {
    "title": {"zh-CN": "账号注销未完成", "en": "Account cancellation not completed"},
    "text": {"zh-CN": "您现在是一个已认证组织的最后一位管理员，注销申请已撤销，账号恢复正常。"
                      "请先移交或解散该组织，再重新申请注销。",
             "en": "You are now the last administrator of a verified organisation, so your cancellation request was "
                   "void and the account is back in use. Hand the organisation over or dissolve it first, then "
                   "request the cancellation again."},
}


def _void_if_blocked(work: Work, request: CancellationRequest, account) -> bool:
    """An organisation must not be left without administrators: co-administrators who all cancel
    would each have seen another when they asked. Checked again here, with the account's
    organisations locked, so that of two finalisations at once the second sees the first's. The
    request is void (not kept waiting: it could wait for ever) and the account gets back its status;
    the owner is told to hand over first and may ask again."""
    rt, db, now = work.rt, work.db, work.at
    administered = select(OrganizationAdmin.organization_id).where(OrganizationAdmin.account_id == account.id)
    db.execute(select(Organization.id).where(Organization.id.in_(administered)).order_by(Organization.id)
               .with_for_update())
    blockers = realname.cancellation_blockers(rt, db, account.id)
    if not blockers:
        return False
    request.status, request.closed_at = "void", now
    if account.status == "cancelling":
        accounts.set_status(db, account.id, request.previous_status, expected="cancelling", now=now)
    work.audit("cancellation.void", subject=("account", account.id),
               details={"request": request.id, "status": account.status, "reason": "last_administrator",
                        "organizations": [b["organization_id"] for b in blockers]})
    work.notify(account.id, "notice_message", BLOCKED_NOTICE, channels=("inbox", "sms"))
    log.info("cancellation.void", request=request.id, reason="last_administrator")
    return True


_ERASED = ("bio", "nickname_pending", "bio_pending", "avatar_id", "avatar_pending_id",
           "phone_enc", "phone_bidx", "email_enc", "email_bidx", "email_pending_enc", "email_pending_bidx",
           "real_name_enc", "id_number_enc", "id_number_bidx", "password_hash", "recovery_key_hash", "totp_secret_enc",
           "totp_enabled_at", "totp_last_step", "locked_until")


def _anonymise(db: Session, account, now: datetime) -> None:
    """The tombstone: the id (a random pseudonym the audit log and the ledger name), the kind, and
    the dates. Every personal field and every blind index goes, so the phone and email can register
    again and nothing links the pseudonym back to a person. Written over the status read under the
    lock, in the one UPDATE that makes the account ``cancelled``."""
    tombstone = dict.fromkeys(_ERASED) | {"nickname": TOMBSTONE_NICKNAME, "real_name_status": "none",
                                          "failed_logins": 0}
    if not accounts.set_status(db, account.id, "cancelled", expected=account.status, now=now, reason=None,
                               until=None, also=tombstone):
        raise RuntimeError(f"account {account.id} left {account.status!r} while locked for its finalisation")


TERMINATED_NICKNAME = "已终止用户"


def anonymise_terminated(work: Work, account) -> None:
    """Retention of a terminated account ended (issue 18, COMPLIANCE D2): what a finalised cancellation
    erases goes (notices, real-name records and documents, sessions, codes, held phone changes, every
    personal field and blind index); the account stays ``terminated`` (a tombstone the audit log and
    the ledger name). The caller holds the account row's lock. Refusals of re-registration keep their
    own blind indexes until they expire."""
    rt, db, now = work.rt, work.db, work.at
    account_id = account.id
    targets = [b for b in (account.phone_bidx, account.email_bidx) if b]
    notify_export.erase_account(rt, db, account_id)
    realname.erase_account(rt, db, account_id)
    profile.erase_pending(db, account_id, now, work.origin)
    erased_sessions = sessions.erase_sessions(rt, db, account_id)
    codes.erase_codes(db, targets, account_id)
    phone_change.erase_account(work, account_id)
    for column in _ERASED:
        setattr(account, column, None)
    account.nickname, account.real_name_status, account.failed_logins = TERMINATED_NICKNAME, "none", 0
    account.updated_at = now
    db.flush()
    work.audit("account.anonymised", subject=("account", account_id),
               details={"reason": "terminated_retention", "sessions_deleted": erased_sessions})


# --- the personal-data export (PIPL Art. 45) ---------------------------------------------------------

README = {
    "zh-CN": (
        "这是奥集能账号服务保存的关于您账号的全部个人信息（《个人信息保护法》第四十五条）。各部分：\n"
        "account：账号基本资料（编号、类型、状态、昵称、简介、头像地址、待审核的修改、注册与修改时间）。\n"
        "phone：绑定的手机号。email：绑定的邮箱，以及是否有等待验证码确认的邮箱更换（地址只随其验证码保存，确认后才绑定）。\n"
        "real_name：实名认证状态、姓名和身份证号，以及认证记录。\n"
        "security：是否设置了密码、恢复密钥和两步验证（不含密码、密钥等秘密本身）。\n"
        "consents：您同意过的协议版本、时间、IP 和渠道。optional_purposes：可选用途（如营销消息）的授权状态。\n"
        "sessions：登录过的设备（时间、IP、浏览器、登录方式：密码、验证码、扫码登录、通行密钥），包括已退出的。"
        "passkeys：您添加的通行密钥（名称、添加和最近使用时间、使用计数；不含密钥本身）。"
        "qr_logins：您扫码确认或拒绝的登录请求（时间、请求方的 IP 和浏览器、结果）。"
        "known_devices：用于新设备登录提醒的已知设备（仅首次和最近登录日期；设备标识只以密钥哈希保存）。\n"
        "activity：账号操作记录，包括平台对账号采取的措施（审计日志中与您有关的记录，已打码）。\n"
        "verification_codes：您登录后申请的验证码和发往您已绑定手机号、邮箱的验证码记录（不含验证码本身）。\n"
        "messages：站内信和通知。organizations：您管理的组织。\n"
        "cancellation：注销申请记录。\n"
        "apps：您授权过的应用（单点登录）、它们可获得的信息和授权时间，以及每次同意、拒绝或撤回的记录。\n"
        "reports：您提交的举报、投诉及其处理结果。actions：平台对您账号采取的处理措施、理由及您的申诉。\n"
        "如需更正信息，请在“我的账号”页面修改资料、邮箱或手机号，实名信息可重新认证。"),
    "en": (
        "Everything the Orginone account service holds about your account (PIPL Art. 45). Sections:\n"
        "account: the account itself (id, kind, status, nickname, bio, the avatar's address, changes\n"
        "  waiting for a reviewer, when created and changed).\n"
        "phone: the bound mobile number. email: the bound address, and whether a change waits for its code "
        "(the new address is kept only with that code until it is proved).\n"
        "real_name: real-name status, name and ID number, and the verification records.\n"
        "security: whether a password, a recovery key and two-step verification are set (never the secrets).\n"
        "consents: the agreement versions you accepted, when, from which IP and channel. optional_purposes: "
        "whether you allow optional uses such as marketing messages.\n"
        "sessions: the devices that logged in (times, IP, browser, and how: password, SMS code, QR code or "
        "passkey), ended ones too. passkeys: your passkeys (name, when added and last used, signature counter; "
        "never key material). qr_logins: the QR login requests you scanned, approved or rejected (time, the "
        "requesting browser's IP and user agent, outcome). known_devices: the "
        "devices known for new-device sign-in notices (first and latest sign-in only; a device is kept only as "
        "a keyed hash).\n"
        "activity: the account's trail, actions the platform took on it included (the audit records about "
        "you, masked).\n"
        "verification_codes: the codes you asked for while signed in and those sent to your bound phone and "
        "email (never the codes themselves).\n"
        "messages: in-site messages and notices. organizations: the organisations you administer.\n"
        "cancellation: your cancellation requests.\n"
        "apps: the apps you allowed to sign you in (single sign-on), what each may receive and when you allowed "
        "it, and every consent, refusal or withdrawal.\n"
        "reports: the reports and complaints you sent and their outcomes. actions: the actions the platform "
        "took on your account, their reasons, and your appeals.\n"
        "To correct anything, edit your profile, email or phone number on the account pages; real-name data "
        "is corrected by verifying again."),
}
EXPORT_FORMAT = "passport-export/1"
_ACTIVITY_BATCH = 200


def export_archive(rt: Runtime, origin: audit.Origin, account_id: str, *, code: str) -> dict[str, Any]:
    """The JSON archive of everything held about the account, after an SMS code (purpose
    ``export``) proves the owner holds the phone: a stolen session alone must not copy it all."""
    with rt.db.read() as db:
        target = codes.own_target(rt, accounts.get(db, account_id))
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        outcome = codes.redeem_code(rt, work.db, target, codes.Purpose.EXPORT, code or "")
        proved = outcome is codes.Redeemed.OK
        work.audit("account.exported" if proved else "account.export", subject=("account", account_id),
                   result="ok" if proved else "failed", details={} if proved else {"reason": "invalid_code"})
    if not proved:
        raise credentials.wrong_code()
    with rt.db.read() as db:
        archive = _archive(rt, db, account_id, now)
    log.info("account.exported", sections=len(archive))
    return archive


def _archive(rt: Runtime, db: Session, account_id: str, now: datetime) -> dict[str, Any]:
    account = accounts.get(db, account_id)
    cipher = rt.keys.cipher

    def clear(value: bytes | None, field) -> str | None:
        return cipher.decrypt(value, field, account.id) if value else None

    held = dict(realname.export_account(rt, db, account_id) or {})
    organizations = held.pop("organizations", [])
    real_name = dict(held.pop("real_name", None) or {"status": account.real_name_status}) | held
    own_targets = [b for b in (account.phone_bidx, account.email_bidx) if b]
    return _plain({
        "README": README,
        "format": EXPORT_FORMAT,
        "generated_at": now,
        "account": {"id": account.id, "kind": account.kind, "status": account.status, "nickname": account.nickname,
                    "bio": account.bio,
                    "avatar_url": f"/u/{account.id}/avatar/{account.avatar_id}" if account.avatar_id else None,
                    "pending_review": accounts.pending_review(account),
                    "created_at": account.created_at, "updated_at": account.updated_at},
        "phone": clear(account.phone_enc, accounts.PHONE_FIELD),
        "email": {"address": clear(account.email_enc, accounts.EMAIL_FIELD),
                  "change_pending": codes.pending_email(rt, db, account_id) is not None},
        "real_name": real_name,
        "security": {"password_set": account.password_hash is not None,
                     "recovery_key_set": account.recovery_key_hash is not None,
                     "two_step_verification_since": account.totp_enabled_at,
                     "failed_logins": account.failed_logins, "locked_until": account.locked_until},
        "consents": [agreements.consent_view(c) | {"user_agent": c.user_agent}
                     for c in agreements.consents_of(db, account_id)],
        "optional_purposes": agreements.purposes_of(db, account_id),
        "sessions": sessions.sessions_of(db, account_id),
        "known_devices": devices.devices_of(db, account_id),
        "passkeys": passkeys.of_account(db, account_id),
        "qr_logins": qr.of_account(db, account_id),
        "activity": _activity(db, account_id),
        "verification_codes": codes.codes_for(db, account_id, own_targets),
        "messages": notify_export.export_account(rt, db, account_id),
        "organizations": organizations,
        "cancellation": [_view(r, now) for r in db.scalars(
            select(CancellationRequest).where(CancellationRequest.account_id == account_id)
            .order_by(CancellationRequest.requested_at.desc()))],
    } | {name: section(rt, db, account_id) for name, section in _export_sections.items()})


def _activity(db: Session, account_id: str) -> list[dict[str, Any]]:
    """The account's trail as the activity page shows it (``audit.user_view``): what others did to it
    (staff, the system, someone trying its login) only by action, time, result, kind of actor and a
    reason the user was told, never their IP, browser, identity or internal notes."""
    items, before = [], None
    while True:
        page = audit.user_activity(db, account_id, before=before, limit=_ACTIVITY_BATCH)
        items += page
        if len(page) < _ACTIVITY_BATCH:
            return items
        before = page[-1]["seq"]


def _plain(value: Any) -> Any:
    """JSON-ready: times as RFC 3339 UTC, containers walked."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- correction: the phone number (PIPL Art. 46) -----------------------------------------------------

