"""Page plumbing: templates, language, CSRF cookie, page-level error rendering."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from passport import errors

router = APIRouter(include_in_schema=False)
dev_router = APIRouter(include_in_schema=False)


def error_page(request: Request, exc: errors.DomainError) -> HTMLResponse:
    return HTMLResponse(f"<h1>{exc.status}</h1><p>{exc.code}</p>", status_code=exc.status)
