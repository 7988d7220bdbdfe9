"""New-device login notices (issue 15, COMPLIANCE C4): when an account signs in from a device it has
not used before, its owner is told — in the inbox and by SMS (within the security-notice caps) —
with the coarse region, the time and a "not me → freeze" link.

What a "device" is, privately: a long-lived random cookie (``passport_device``, made by the handlers
on the first answer, see ``web.http.device_id``) together with the user-agent family ("Chrome on
Windows"). Only ``HMAC(secret, cookie, family)`` is stored, with the first and last sign-in times: no
cookie value, no user agent, no IP. The same cookie replayed from another kind of browser is another
device. A client that keeps no cookies is a new device at each login (its notices are capped).

The first device an account is seen on (the sign-in of registration, or the first login of an account
that has none recorded) is remembered without a notice."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

import anyio
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passport.audit import service as audit
from passport.clock import china_time
from passport.db import HotStatement
from passport.ipregion import LOCAL_NETWORK, THIS_MACHINE, UNKNOWN
from passport.ipregion import resolve as ip_region
from passport.runtime import Runtime
from passport.security.tokens import keyed_digest
from passport.sessions.models import KnownDevice
from passport.work import Work, unit_of_work

# Last-seen times are kept to the day: a known device costs one indexed read per login, no write.
_TOUCH_EVERY = timedelta(days=1)
_devices = KnownDevice.__table__
_KNOWN = select(_devices.c.id, _devices.c.last_seen_at).where(_devices.c.account_id == bindparam("aid"),
                                                              _devices.c.device_hash == bindparam("dh"))
_KNOWN_HOT = HotStatement(_KNOWN)

# Product tokens ("Name/version"), the more specific first: Edge and Opera also say Chrome and
# Safari, Chrome also says Safari, WeChat's browser says all of them.
_BROWSERS = (("MicroMessenger/", "WeChat"), ("DingTalk/", "DingTalk"), ("Edg/", "Edge"), ("EdgA/", "Edge"),
             ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"), ("CriOS/", "Chrome"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"), ("python", "Python"),
             ("okhttp/", "Android app"), ("CFNetwork/", "iOS app"))
_SYSTEMS = (("HarmonyOS", "HarmonyOS"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))


def ua_family(user_agent: str | None) -> str:
    """The coarse kind of client: "Chrome on Windows", "Safari on iOS", "other"; never versions."""
    ua = (user_agent or "")[:512]
    browser = next((name for key, name in _BROWSERS if key in ua), None)
    system = next((name for key, name in _SYSTEMS if key in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "other"


def device_hash(rt: Runtime, device: str, family: str) -> bytes:
    return keyed_digest(rt.keys.secret, "device", device, family)


def remember(work: Work, account_id: str, device: str | None) -> None:
    """Registration: the device the account was made on is its first known device (no notice)."""
    if device:
        _insert(work.db, account_id, device_hash(work.rt, device, ua_family(work.origin.user_agent)), work.at)


def note_login(rt: Runtime, origin: audit.Origin, account_id: str, device: str | None, method: str) -> None:
    """After a successful login (its session committed): remember the device, and tell the owner
    when the account has signed in elsewhere before but never on this one."""
    if not device:
        return
    family = ua_family(origin.user_agent)
    digest = device_hash(rt, device, family)
    if rt.db.is_sqlite:
        with rt.db.connect() as conn:
            known = conn.execute(_KNOWN, {"aid": account_id, "dh": digest}).first()
    else:
        known = rt.db.hot(_KNOWN_HOT, {"aid": account_id, "dh": digest})
    _conclude(rt, origin, account_id, digest, family, known, method)


async def note_login_async(rt: Runtime, origin: audit.Origin, account_id: str, device: str | None,
                           method: str) -> None:
    """``note_login`` for the event loop (PostgreSQL): a known device is one awaited read; a new
    one is written on a thread."""
    if not device:
        return
    family = ua_family(origin.user_agent)
    digest = device_hash(rt, device, family)
    known = await rt.db.hot_async(_KNOWN_HOT, {"aid": account_id, "dh": digest})
    if known is not None and not _stale(rt, known.last_seen_at):
        return
    await anyio.to_thread.run_sync(functools.partial(_conclude, rt, origin, account_id, digest, family, known,
                                                     method))


def _stale(rt: Runtime, last_seen: datetime) -> bool:
    return rt.clock.now() - last_seen > _TOUCH_EVERY


def _conclude(rt: Runtime, origin: audit.Origin, account_id: str, digest: bytes, family: str, known,
              method: str) -> None:
    if known is not None:
        if _stale(rt, known.last_seen_at):
            with rt.db.write() as db:
                db.execute(update(_devices).where(_devices.c.id == known.id).values(last_seen_at=rt.clock.now()))
        return
    try:
        with unit_of_work(rt, origin, actor=("user", account_id)) as work:
            first = work.db.scalar(select(_devices.c.id).where(_devices.c.account_id == account_id).limit(1)) is None
            _insert(work.db, account_id, digest, work.at)
            region = ip_region(rt.settings, origin.ip)
            work.audit("login.new_device", subject=("account", account_id),
                       details={"method": method, "device": family, "region": region, "notified": not first})
            if not first:
                work.notify(account_id, "notice_new_device",
                            {"time": china_time(work.at), "region": _region_text(region), "device": family})
    except IntegrityError:
        pass  # the same device signed in twice at once: the other login remembered it (and told)


def _insert(db: Session, account_id: str, digest: bytes, at: datetime) -> None:
    db.add(KnownDevice(account_id=account_id, device_hash=digest, first_seen_at=at, last_seen_at=at))
    db.flush()


_REGION_WORDS = {UNKNOWN: {"zh-CN": "未知地区", "en": "unknown region"},
                 LOCAL_NETWORK: {"zh-CN": LOCAL_NETWORK, "en": "local network"},
                 THIS_MACHINE: {"zh-CN": THIS_MACHINE, "en": "this machine"}}


def _region_text(region: str) -> str | dict[str, str]:
    """The region for the notice: a province or country as resolved (Chinese names), the special
    words by language."""
    return _REGION_WORDS.get(region or UNKNOWN, region)


def devices_of(db: Session, account_id: str) -> list[dict]:
    """The account's known devices for its personal-data export: when each was first and last seen."""
    rows = db.execute(select(_devices.c.first_seen_at, _devices.c.last_seen_at)
                      .where(_devices.c.account_id == account_id).order_by(_devices.c.first_seen_at)).all()
    return [{"first_seen_at": row.first_seen_at, "last_seen_at": row.last_seen_at} for row in rows]


def erase_devices(db: Session, account_id: str) -> int:
    """Delete every known device of the account (cancellation finalisation)."""
    return db.execute(_devices.delete().where(_devices.c.account_id == account_id)).rowcount
