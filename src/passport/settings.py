"""One settings object, read from PASSPORT_* environment variables.

Every default is documented in README.md ("Configuration"). In prod the service refuses to start
with development keys, the embedded database or the dev outbox.
"""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def read_secret(value: str | None) -> str | None:
    """Secrets may be given inline or as ``file:///path`` so they never live in the repo."""
    if value and value.startswith("file://"):
        return Path(value.removeprefix("file://")).read_text(encoding="utf-8").strip()
    return value


AUDIT_RETENTION_MIN_DAYS = 180
NETWORK_LOG_MIN_DAYS = 180
# Cancellation completes within 15 working days (COMPLIANCE D1): three calendar weeks hold 15 working
# days, fewer when a public holiday falls in them, so 21 calendar days is the longest safe setting.
COOLING_OFF_MAX_DAYS = 21


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PASSPORT_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("./var")
    database_url: str | None = None
    # Connections each server process keeps, and so requests it serves on threads at once: a request
    # thread never waits for a connection, nor opens one that is thrown away after the request.
    database_pool_size: Annotated[int, Field(ge=1, le=500)] = 20
    redis_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    # Shown in every page's footer (issue 20): the operator, its ICP filing number (ICP 备案号) and
    # customer service. Empty ones are left out.
    operator_name: str = "奥集能 Orginone"
    icp_number: str | None = None
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Operations endpoints (issue 15). /metrics answers a client in one of these networks (its address
    # resolved behind PASSPORT_TRUSTED_PROXIES; a forwarded request from an undeclared proxy never
    # counts) or one sending ``Authorization: Bearer <PASSPORT_METRICS_TOKEN>``; anyone else gets 404.
    metrics_allow: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    metrics_token: str | None = None  # a secret: inline or file:///path
    # /api/docs and /api/v1/openapi.json; unset: on in dev and test, off in prod.
    api_docs: bool | None = None
    max_body_bytes: int = 1024 * 1024
    # Dependencies that fail (issue 16): requests answer 503 ``service_unavailable`` with this Retry-After.
    # Redis (the rate limits) is given this long to connect and to answer before it counts as down.
    redis_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 0.5
    # PostgreSQL, for request work (not for migrations, the CLI or the worker): the longest a statement
    # may run, the longest it may wait for a lock, and the longest a new connection may take (libpq's
    # minimum is 2 s). 0 turns a timeout off.
    database_statement_timeout_ms: Annotated[int, Field(ge=0)] = 10000
    database_lock_timeout_ms: Annotated[int, Field(ge=0)] = 5000
    database_connect_timeout_seconds: Annotated[int, Field(ge=2, le=60)] = 3
    unavailable_retry_after_seconds: Annotated[int, Field(ge=1, le=3600)] = 5
    # ``passport serve`` (uvicorn) limits, per server process: the request line and headers together
    # (bytes; past it 400 or 431), how many header lines, how long a client may take to send its headers
    # and its body, how long an idle keep-alive connection stays open, and how many connections and
    # requests at once (past it 503).
    server_max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    server_max_headers: Annotated[int, Field(ge=8, le=1000)] = 100
    server_header_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    server_body_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    server_keep_alive_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    server_limit_concurrency: Annotated[int, Field(ge=1)] = 1000
    log_level: str = "INFO"
    log_json: bool = True

    # Keys. Encryption keys are "kid:base64(32 bytes)" separated by commas, the first one active.
    # The blind-index and secret keys are base64; while one rotates, "NEW,OLD" (README "Key rotation").
    encryption_keys: str | None = None
    blind_index_key: str | None = None
    secret_key: str | None = None

    # Argon2id (OWASP minimum profile: m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # Hashes run at once per process; 0 means the cores this process may use divided by the
    # number of server processes (``passport serve --workers`` tells it).
    argon2_concurrency: int = 0
    server_processes: int = 1
    password_min_length: int = 8
    password_min_classes: int = 3

    # Verification codes (COMPLIANCE C6).
    code_length: int = 6
    code_ttl_seconds: int = 300
    code_max_attempts: int = 5
    code_resend_seconds: int = 60
    code_per_hour: int = 5
    code_per_day: int = 10
    code_per_ip_hour: int = 30
    # Freeze ("my account was stolen") codes have their own allowance per number: login and
    # registration codes, perhaps burnt on purpose, never keep an owner from freezing.
    code_freeze_per_hour: int = 3
    code_freeze_per_day: int = 6

    # Login (COMPLIANCE C5).
    login_max_failures: int = 5
    login_lock_minutes: int = 15
    login_per_ip_minute: int = 30
    # Passwordless sign-in (issue 21): QR login requests per client IP a minute and how long one
    # lives; passkey sign-in options per client IP a minute. The relying party of passkeys is the
    # host of PASSPORT_BASE_URL (a loopback address counts as "localhost"), its origin the origin.
    qr_login_per_ip_minute: int = 10
    qr_login_seconds: Annotated[int, Field(ge=30, le=600)] = 120
    passkey_per_ip_minute: int = 30
    staff_login_per_login_hour: int = 20
    register_per_ip_hour: int = 20
    # Credential recovery (COMPLIANCE C2, C4): recovery-key tries per number, resets, freezes and
    # unfreezes per client IP, and current-password checks per account (change password, new key).
    recovery_key_per_phone_hour: int = 5
    recovery_per_ip_hour: int = 30
    password_check_per_hour: int = 10
    # Security notices (password locked, new device, password changed, frozen…) per account and
    # channel: beyond these only the inbox gets them (coalesced), so no one can flood a phone.
    security_sms_per_hour: int = 3
    security_sms_per_day: int = 10
    session_idle_days: int = 7
    # Step-up (issue 15): a sensitive change (two-step verification, email, export…) needs the password
    # or an authenticator code proved by this session within the last this many minutes.
    step_up_minutes: int = Field(10, ge=1, le=24 * 60)
    session_absolute_days: int = 30
    # Each process may reuse a looked-up session for this long: a revocation made on another node
    # takes at most this long to reach this one (this node drops what it revokes at once).
    session_cache_seconds: float = 2.0

    # Senders.
    sms_backend: Literal["outbox", "aliyun"] = "outbox"
    sms_aliyun_access_key_id: str | None = None
    sms_aliyun_access_key_secret: str | None = None
    sms_aliyun_sign_name: str | None = None
    sms_aliyun_template_code: str | None = None
    sms_aliyun_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    sms_timeout_seconds: float = 5.0

    # Email: ``outbox`` (dev/test: $PASSPORT_DATA_DIR/outbox/email.jsonl) or ``smtp``.
    email_backend: Literal["outbox", "smtp"] = "outbox"
    email_from: str = "奥集能 passport <no-reply@localhost>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = 10.0

    # Notices (notify/): SMS template codes by notice template id (JSON), outbox retries, maintenance.
    sms_templates: dict[str, str] = {}
    notice_max_attempts: int = 8
    notice_retry_base_seconds: float = 30.0
    notice_retry_cap_seconds: float = 3600.0
    notice_lease_seconds: int = 120
    notice_delivery_interval_seconds: float = 1.0
    notice_cache_seconds: float = 5.0
    maintenance_notice_hours: int = 24
    notice_retention_days: int = 180

    # Second factor and devices.
    totp_issuer: str = "奥集能"
    mfa_token_seconds: int = 300
    # IP region: a CSV of start,end,country,province (or an ip2region .xdb file); unset: 未知.
    ip_region_file: Path | None = None

    # Real-name verification (COMPLIANCE R1, R2): ``manual`` (an ID image a reviewer checks), ``http``
    # (a two-factor identity check service, HMAC-signed JSON) or ``dev`` (format checks only; dev/test).
    realname_provider: Literal["manual", "http", "dev"] = "manual"
    realname_accounts_per_id: int = Field(1, ge=1)
    realname_min_age: int = Field(14, ge=0)
    realname_http_url: str | None = None
    realname_http_app_id: str | None = None
    realname_http_secret: str | None = None
    realname_http_timeout_seconds: float = 5.0
    realname_http_retries: int = Field(2, ge=0, le=5)
    upload_max_bytes: int = 5 * 1024 * 1024

    # Account-information review (COMPLIANCE I1): lexicon files of the operator's, read beside the bundled
    # ones (passport/moderation/lexicons); a changed file is picked up within 10 s.
    moderation_lexicon_dir: Path | None = None
    # Avatars: which go to a reviewer before they are shown (``all``; ``new``: accounts younger than
    # avatar_trusted_days or without a verified real name; ``none``), the upload's limits, the side of
    # the stored (re-encoded) image and how close (bits of the 64-bit perceptual hash) to a blocklisted
    # image an upload is refused.
    avatar_review: Literal["all", "new", "none"] = "new"
    avatar_trusted_days: int = Field(30, ge=0)
    avatar_max_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    avatar_max_pixels: int = Field(4096, ge=64)
    avatar_size: int = Field(256, ge=32, le=1024)
    avatar_hash_distance: int = Field(6, ge=0, le=32)

    # Retention of short-lived rows swept by the worker.
    sweep_interval_seconds: int = 60
    # Audit records are kept this long, then removed behind a checkpoint (COMPLIANCE L1: >= 6 months).
    audit_retention_days: int = 365
    # The audit chain's HMAC keys, "kid:base64(32 bytes)" separated by commas, the first signing new
    # records and anchors (a secret: inline or file:///path). Unset in dev/test: derived from the secret key.
    audit_keys: str | None = None
    # Cancellation cooling-off (COMPLIANCE D1): the user may withdraw until it ends; 0 finalises at the
    # worker's next round. At most COOLING_OFF_MAX_DAYS.
    cancellation_cooling_off_days: int = 15
    # A phone change proved by the recovery key instead of the old number waits this long (issue 15):
    # the old number, the email and the inbox are told and may cancel it ("this was not me").
    phone_change_hold_days: int = Field(7, ge=1)
    # Single sign-on (issue 19). The issuer is PASSPORT_BASE_URL. Pairwise subjects are an HMAC of the
    # account id and the app's sector under a key made once and kept sealed in the database; this
    # setting (a secret: inline or file:///path) overrides it. Changing the key changes every ``sub``.
    oidc_subject_key: str | None = None
    oidc_code_seconds: Annotated[int, Field(ge=10, le=600)] = 120
    oidc_access_token_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    oidc_id_token_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    oidc_refresh_token_days: Annotated[int, Field(ge=1, le=365)] = 30
    # Back-channel logout: the app's endpoint gets this long to answer; failed sends are retried
    # (1 min, 2, 4, … ) this many times.
    oidc_logout_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5
    oidc_logout_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    # Token, revocation and introspection requests per client IP and minute (an app's backend sends
    # every user's: keep it well above its peak).
    oidc_per_ip_minute: Annotated[int, Field(ge=1)] = 1200
    # Reports and appeals (issue 18): staff see each item's handling deadline; overdue ones are
    # highlighted. A reporter files at most report_per_hour / report_per_day reports; an action can be
    # appealed for appeal_window_days after it was taken.
    report_handling_days: int = Field(7, ge=1)
    appeal_handling_days: int = Field(15, ge=1)
    report_per_hour: int = Field(10, ge=1)
    report_per_day: int = Field(30, ge=1)
    appeal_window_days: int = Field(60, ge=1)
    # Refusal of re-registration: how long a refused phone or ID number stays refused by default.
    refusal_days: int = Field(365, ge=1)
    # Retention (COMPLIANCE D2): consent rows of finalised accounts lose IP and user agent after the
    # network-log period (at least six months); terminated accounts are anonymised, and the evidence
    # images of closed reports deleted, after terminated_retention_days.
    network_log_days: int = 180
    terminated_retention_days: int = Field(180, ge=1)
    # Customer service (§十四(二)): shown in the footer, on error and suspension pages and in notices.
    customer_service_phone: str = ""
    customer_service_email: str = ""
    customer_service_hours: str = ""
    operator_address: str = ""

    @field_validator("trusted_proxies", "metrics_allow", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"PASSPORT_METRICS_ALLOW: {network!r} is not an address or a CIDR network") from None
        return value

    @field_validator("audit_retention_days")
    @classmethod
    def _keep_audit_six_months(cls, value: int) -> int:
        if value < AUDIT_RETENTION_MIN_DAYS:
            raise ValueError(f"PASSPORT_AUDIT_RETENTION_DAYS must be at least {AUDIT_RETENTION_MIN_DAYS} "
                             f"(audit records are kept at least six months, COMPLIANCE L1); got {value}")
        return value

    @field_validator("network_log_days")
    @classmethod
    def _keep_network_logs_six_months(cls, value: int) -> int:
        if value < NETWORK_LOG_MIN_DAYS:
            raise ValueError(f"PASSPORT_NETWORK_LOG_DAYS must be at least {NETWORK_LOG_MIN_DAYS} "
                             f"(network logs are kept at least six months); got {value}")
        return value

    @field_validator("cancellation_cooling_off_days")
    @classmethod
    def _cancel_within_fifteen_working_days(cls, value: int) -> int:
        if not 0 <= value <= COOLING_OFF_MAX_DAYS:
            raise ValueError(f"PASSPORT_CANCELLATION_COOLING_OFF_DAYS must be 0 to {COOLING_OFF_MAX_DAYS} "
                             f"(cancellation completes within 15 working days, COMPLIANCE D1); got {value}")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_prod(self) -> Settings:
        if self.env != "prod":
            return self
        problems = []
        if not self.database_url or self.database_url.startswith("sqlite"):
            problems.append("PASSPORT_DATABASE_URL must point at PostgreSQL")
        for name in ("encryption_keys", "blind_index_key", "secret_key"):
            if not getattr(self, name):
                problems.append(f"PASSPORT_{name.upper()} is required")
        if not self.audit_keys:
            problems.append("PASSPORT_AUDIT_KEYS is required")
        if self.sms_backend == "outbox":
            problems.append("PASSPORT_SMS_BACKEND=outbox is for dev and test only")
        if self.email_backend == "outbox":
            problems.append("PASSPORT_EMAIL_BACKEND=outbox is for dev and test only")
        if not self.base_url.startswith("https://"):
            problems.append("PASSPORT_BASE_URL must be https:// in prod")
        if self.realname_provider == "dev":
            problems.append("PASSPORT_REALNAME_PROVIDER=dev is for dev and test only")
        if self.realname_provider == "http" and not (
                (self.realname_http_url or "").startswith("https://") and self.realname_http_secret):
            problems.append("PASSPORT_REALNAME_HTTP_URL (https://) and PASSPORT_REALNAME_HTTP_SECRET are required")
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    @property
    def is_dev(self) -> bool:
        return self.env in ("dev", "test")

    @property
    def dev_tools(self) -> bool:
        """The /dev pages (the SMS outbox, codes in full) and the dev banner: PASSPORT_ENV=dev only;
        tests read the outbox files."""
        return self.env == "dev"

    @property
    def api_docs_enabled(self) -> bool:
        return self.env != "prod" if self.api_docs is None else self.api_docs

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'passport.sqlite3').resolve()}"

    @property
    def hash_slots(self) -> int:
        if self.argon2_concurrency > 0:
            return self.argon2_concurrency
        return max(1, len(os.sched_getaffinity(0)) // max(1, self.server_processes))

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    def secret(self, name: str) -> str | None:
        return read_secret(getattr(self, name))
