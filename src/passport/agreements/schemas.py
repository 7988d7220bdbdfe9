from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from passport.schemas import Input


class VersionOut(BaseModel):
    kind: str
    version: str
    title: str
    effective_at: str
    digest: str
    requires_reconsent: bool


class DocumentOut(VersionOut):
    body: str


class ConsentOut(BaseModel):
    kind: str
    version: str
    digest: str
    accepted_at: str
    ip: str | None
    channel: str = Field(description="web | api | cli: where the acceptance came from.")
    basis: Literal["explicit", "continued_use"] = Field(
        "explicit", description="explicit: the user accepted; continued_use: a version that did not ask for "
                                "re-consent, recorded when the user next used the service (§二(三)).")


class ConsentIn(Input):
    kind: str = Field(max_length=32, examples=["user-agreement"])
    version: str = Field(max_length=32, examples=["2.0"])


class PurposeIn(Input):
    granted: StrictBool


class PurposeOut(BaseModel):
    purpose: str = Field(examples=["marketing"])
    granted: bool
    changed_at: str | None = Field(description="When it was last granted or withdrawn; null if never.")


class PublishIn(Input):
    kind: str = Field(max_length=32, examples=["user-agreement"])
    version: str = Field(max_length=32, examples=["2.0"])
    title: str = Field("", max_length=200, description="Default: the first heading of the body.")
    body: str = Field(description="Markdown; raw HTML is shown as text.")
    effective_at: datetime | None = Field(None, description="RFC 3339 with a zone; default now.")
    requires_reconsent: StrictBool = False
    immediate: StrictBool = Field(False, description="Allow a re-consent version to take effect now or in the past.")


class PublishedOut(VersionOut):
    published_at: str | None = None
