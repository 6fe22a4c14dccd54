"""Registering trusted documents and finding them by hash.

A document's id is `sha256:<hex>` (GraphQL-over-HTTP persisted documents) or the bare hex (Apollo's
`sha256Hash`, the keys of GraphQL Codegen's persisted-documents.json). Registration checks every hash
against its document and saves all of them or none; registering a document again changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from kernel import clock
from kernel.errors import DomainError, DomainErrors, invalid
from trusted.models import TrustedDocument

PREFIX = "sha256:"
_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
# Far above any document the query limits let run (2000 tokens); a bigger one is not an app's operation.
MAX_DOCUMENT_CHARS = 100_000
MAX_DOCUMENTS = 5000  # in one registration: an app's whole set, with room

# Registered documents never change, so a process keeps those it has read (bounded, content-addressed:
# a hash always names the same text). Misses are not kept: another process may register the hash.
_CACHE_SIZE = 2000
_cache: dict[str, str] = {}


def sha256_of(document: str) -> str:
    # A lone surrogate (JSON may escape one) gets a hash too: one no registered document has.
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


def parse_id(document_id: str) -> str | None:
    """The lowercase hex hash a document id names, or None when it is no sha256 id."""
    match = _ID.fullmatch(document_id.strip().lower())
    return match.group(1) if match else None


@dataclass(frozen=True)
class Registration:
    added: int
    already_registered: int


# Where a problem is reported: the mutation's input (the command line prints the position too).
FIELD = ("input", "documents")


def _at(index: int, name: str) -> tuple[str, ...]:
    return (*FIELD, str(index), name)


def _checked(documents: Sequence[tuple[str, str]]) -> dict[str, str]:
    """hash -> document, or every problem at once (the field path names the entry's position)."""
    if not documents:
        raise invalid("Send at least one document.", *FIELD)
    if len(documents) > MAX_DOCUMENTS:
        raise invalid(f"Send at most {MAX_DOCUMENTS} documents at once.", *FIELD)
    problems: list[DomainError] = []
    checked: dict[str, str] = {}
    for index, (document_id, document) in enumerate(documents):
        sha256 = parse_id(document_id)
        if sha256 is None:
            problems.append(
                invalid("Not a sha256 document id (sha256:<64 hex digits>).", *_at(index, "documentId"))
            )
        elif len(document) > MAX_DOCUMENT_CHARS:
            problems.append(invalid(f"Longer than {MAX_DOCUMENT_CHARS} characters.", *_at(index, "document")))
        elif sha256_of(document) != sha256:
            problems.append(invalid("The id is not the sha256 of this document.", *_at(index, "documentId")))
        else:
            checked[sha256] = document
    if problems:
        raise DomainErrors(problems)
    return checked


async def register(documents: Sequence[tuple[str, str]]) -> Registration:
    """Save (id, document) pairs, id `sha256:<hex>` or hex; none when any id does not match its text."""
    checked = _checked(documents)
    async with in_transaction() as tx:
        rows = await TrustedDocument.filter(sha256__in=list(checked)).using_db(tx).only("sha256")
        known = {row.sha256 for row in rows}
        now = clock.now()
        new = [
            TrustedDocument(sha256=sha256, document=document, created_at=now)
            for sha256, document in checked.items()
            if sha256 not in known
        ]
        # A registration racing this one may save the same hash first: its row is the same document.
        await TrustedDocument.bulk_create(new, ignore_conflicts=True, using_db=tx)
    return Registration(added=len(new), already_registered=len(known))


async def document(sha256: str) -> str | None:
    """The registered document with this hash (lowercase hex), or None."""
    if (cached := _cache.get(sha256)) is not None:
        return cached
    row = await TrustedDocument.get_or_none(sha256=sha256)
    if row is None:
        return None
    if len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    _cache[sha256] = row.document
    return row.document
