"""The engine as the services use it: the process's engine for the configured lexicons, a check per
field, and the refusal that names each blocked field's category (never the words that hit)."""

from __future__ import annotations

from collections.abc import Mapping

from passport import errors
from passport.moderation.engine import Decision, Engine, engine_for
from passport.moderation.lexicon import CATEGORIES, FIELDS
from passport.moderation.operators import operator_lexicon
from passport.runtime import Runtime

REJECTED = "account_info_rejected"


def engine(rt: Runtime) -> Engine:
    """The process's engine: bundled lexicons, PASSPORT_MODERATION_LEXICON_DIR and the operators' entries."""
    return engine_for(rt.settings.moderation_lexicon_dir, operator_lexicon(rt))


def check(rt: Runtime, field: str, text: str) -> Decision:
    if field not in FIELDS:
        raise errors.invalid("invalid_field", "The field is nickname, bio, organization_name or text.", "field")
    return engine(rt).check(text, field)


def rejected(blocked: Mapping[str, Decision]) -> errors.DomainError:
    """422 ``account_info_rejected``: each refused field with the category that refused it."""
    return errors.DomainError(REJECTED, "This account information cannot be used.", 422, [
        errors.FieldError(field, REJECTED, CATEGORIES[decision.category or "illegal"], category=decision.category)
        for field, decision in blocked.items()])


def marks(decision: Decision) -> list[list]:
    """The hits as non-overlapping ``[start, end, [categories]]`` spans of the original text, for a reviewer's
    highlighting."""
    merged: list[list] = []
    for hit in sorted(decision.hits, key=lambda h: (h.start, h.end)):
        if merged and hit.start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hit.end)
            if hit.category not in merged[-1][2]:
                merged[-1][2].append(hit.category)
        else:
            merged.append([hit.start, hit.end, [hit.category]])
    return merged
