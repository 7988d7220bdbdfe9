"""Fixtures of the agreement tests: ``publish`` publishes versions for one test and takes them away
after it, so the rest of the suite (which shares the session runtime) is never gated by a test's
re-consent version nor sees its banner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete

from passport.agreements import service
from passport.agreements.models import AgreementVersion, Consent
from passport.audit.service import Origin


class Publisher:
    def __init__(self, rt) -> None:
        self.rt = rt
        self.published: list[tuple[str, str]] = []

    def __call__(self, kind: str, version: str, *, body: str | None = None, in_minutes: float | None = None,
                 requires_reconsent: bool = False, immediate: bool = False, title: str | None = None):
        when = self.rt.clock.now() + timedelta(minutes=in_minutes) if in_minutes is not None else None
        self.published.append((kind, version))
        return service.publish(self.rt, Origin(channel="cli"), kind=kind, version=version, title=title or kind,
                               body=body or f"# {kind}\n\nText of {kind} {version}.\n", effective_at=when,
                               requires_reconsent=requires_reconsent, immediate=immediate)

    def track(self, kind: str, version: str) -> None:
        """A version published another way (API, page, CLI) that the cleanup must also remove."""
        self.published.append((kind, version))

    def cleanup(self) -> None:
        with self.rt.db.write() as db:
            for kind, version in self.published:
                db.execute(delete(Consent).where(Consent.kind == kind, Consent.version == version))
                db.execute(delete(AgreementVersion).where(AgreementVersion.kind == kind,
                                                          AgreementVersion.version == version))
        forget_versions()


def forget_versions() -> None:
    service._versions_cache.clear()
    service._summaries.clear()
    service._continued.clear()
    service._settled.clear()


@pytest.fixture()
def publish(rt):
    publisher = Publisher(rt)
    yield publisher
    publisher.cleanup()
