"""Service accounts: API keys for other city systems (Open311 clients, exports, integrations).

A key is `evk_<prefix>_<secret>`: the prefix (12 hex digits) finds the row, the secret (256 random
bits) proves it. Only the SHA-256 of the secret is stored (a high-entropy secret needs no slow hash),
compared in constant time. A key is shown once, when created or rotated; rotating replaces the secret
at once; a revoked key is refused like an unknown one. Each key has scopes and its own request budget
per minute (enforced by the server's rate limiter); its last use is recorded at most once a minute,
so a busy key does not write on every request.

Who may manage keys: admins only (`manages_service_accounts`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from tortoise.queryset import QuerySet

from identity.models import Role, ServiceAccount, User
from identity.service import Principal
from kernel import clock
from kernel.database import atomic
from kernel.errors import DomainError, DomainErrors, ErrorCode, forbidden, invalid, not_found

OPEN311_WRITE = "open311:write"
EXPORT_READ = "export:read"
WEBHOOKS_MANAGE = "webhooks:manage"
GRAPHQL_READ = "graphql:read"
SCOPES = (OPEN311_WRITE, EXPORT_READ, WEBHOOKS_MANAGE, GRAPHQL_READ)
# The scopes a key uses over GraphQL (Bearer): what each allows is decided by its domain's access rules.
GRAPHQL_SCOPES = (GRAPHQL_READ, WEBHOOKS_MANAGE, EXPORT_READ)

KEY_PREFIX = "evk_"
_KEY = re.compile(r"evk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
MAX_NAME = 100
MIN_RATE, MAX_RATE = 1, 100_000
DEFAULT_RATE = 600
LAST_USE_GRANULARITY = timedelta(minutes=1)
INPUT = ("input",)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as issued: the row and the full key, which exists only here."""

    account: ServiceAccount
    key: str


def manages_service_accounts(principal: Principal | None) -> bool:
    return principal is not None and principal.role == Role.ADMIN


def _require_admin(principal: Principal) -> None:
    if not manages_service_accounts(principal):
        raise forbidden("Only administrators manage service accounts.")


def listed(principal: Principal) -> QuerySet[ServiceAccount]:
    _require_admin(principal)
    return ServiceAccount.all()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters


def _checked(name: str, scopes: list[str], requests_per_minute: int) -> tuple[str, list[str]]:
    errors: list[DomainError] = []
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        errors.append(invalid(f"Give a name of 1 to {MAX_NAME} characters.", *INPUT, "name"))
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        errors.append(invalid(f"Scopes are one or more of: {', '.join(SCOPES)}.", *INPUT, "scopes"))
    if not MIN_RATE <= requests_per_minute <= MAX_RATE:
        errors.append(invalid(f"{MIN_RATE} to {MAX_RATE} requests a minute.", *INPUT, "requestsPerMinute"))
    if errors:
        raise errors[0] if len(errors) == 1 else DomainErrors(errors)
    return name, sorted(set(scopes))


async def create(
    principal: Principal, name: str, scopes: list[str], requests_per_minute: int = DEFAULT_RATE
) -> IssuedKey:
    _require_admin(principal)
    name, scopes = _checked(name, scopes, requests_per_minute)
    secret, prefix = _new_secret(), secrets.token_hex(6)
    async with atomic():
        # Its own account, so what it submits is attributed to it; it has no way to sign in.
        user = await User.create(role=Role.CITIZEN, display_name=name)
        account = await ServiceAccount.create(
            name=name,
            prefix=prefix,
            secret_hash=_hash(secret),
            scopes=scopes,
            requests_per_minute=requests_per_minute,
            user=user,
            created_by_id=principal.user.id,
        )
    return IssuedKey(account, f"{KEY_PREFIX}{prefix}_{secret}")


async def _live(principal: Principal, account_id: int) -> ServiceAccount:
    _require_admin(principal)
    account = await ServiceAccount.get_or_none(id=account_id)
    if account is None:
        raise not_found("service account", *INPUT, "id")
    if account.revoked_at is not None:
        raise DomainError(ErrorCode.CONFLICT, "This key is revoked.", [*INPUT, "id"])
    return account


async def rotate(principal: Principal, account_id: int) -> IssuedKey:
    """A new secret under the same prefix; the old key stops working at once."""
    account = await _live(principal, account_id)
    secret = _new_secret()
    account.secret_hash, account.rotated_at = _hash(secret), clock.now()
    await account.save(update_fields=["secret_hash", "rotated_at"])
    return IssuedKey(account, f"{KEY_PREFIX}{account.prefix}_{secret}")


async def revoke(principal: Principal, account_id: int) -> ServiceAccount:
    account = await _live(principal, account_id)
    account.revoked_at = clock.now()
    await account.save(update_fields=["revoked_at"])
    return account


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX)


async def authenticate_key(key: str) -> ServiceAccount:
    """The live account whose key this is; UNAUTHENTICATED for a malformed, unknown, rotated-away or
    revoked key (one answer for all, so a caller learns nothing about which prefixes exist)."""
    refused = DomainError(ErrorCode.UNAUTHENTICATED, "Invalid or revoked API key.")
    match = _KEY.fullmatch(key)
    if match is None:
        raise refused
    account = await ServiceAccount.filter(prefix=match.group(1)).select_related("user").first()
    if (
        account is None
        or account.revoked_at is not None
        or not hmac.compare_digest(account.secret_hash, _hash(match.group(2)))
    ):
        raise refused
    now = clock.now()
    if account.last_used_at is None or now - account.last_used_at >= LAST_USE_GRANULARITY:
        account.last_used_at = now
        await ServiceAccount.filter(id=account.id).update(last_used_at=now)
    return account


def require_scope(account: ServiceAccount, *scopes: str) -> None:
    """FORBIDDEN unless the key has one of `scopes`."""
    if not set(scopes) & set(account.scopes):
        raise forbidden(f"This API key lacks the scope {' or '.join(scopes)}.")


def key_principal(account: ServiceAccount) -> Principal:
    """The caller a key acts as where its scopes allow: the account's own user, with the key's scopes
    (access rules grant a key only what `key_has_scope` says)."""
    return Principal(account.user, 0, frozenset(account.scopes))


async def principal_of_user(user: User) -> Principal:
    """`user` as a caller when no request says who it is (a background job run for its owner): a
    service account's user is its key, with no scopes once revoked; anyone else is themselves."""
    account = await ServiceAccount.get_or_none(user_id=user.id)
    if account is None:
        return Principal(user, 0)
    return Principal(user, 0, frozenset() if account.revoked_at is not None else frozenset(account.scopes))


def key_has_scope(principal: Principal | None, scope: str) -> bool:
    return principal is not None and principal.scopes is not None and scope in principal.scopes
