"""Admin console pages under /admin."""

from __future__ import annotations
