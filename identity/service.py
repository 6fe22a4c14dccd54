"""Sign-in, tokens and phone verification.

Access tokens are short-lived JWTs naming the user and the session; every request re-checks that the
session is not revoked. Refresh tokens are opaque, stored hashed, and rotate on use: presenting one
that was already rotated means it leaked, so the whole session is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from identity.config import IdentityConfig
from identity.models import OtpChallenge, RefreshToken, Role, Session, SignInFailure, User
from kernel import clock
from kernel.database import is_row_id
from kernel.errors import DomainError, DomainErrors, ErrorCode, invalid
from kernel.rawsql import placeholders

_hasher = PasswordHasher()
# Verified against when the login is unknown, so a missing user costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")
_JWT_ALGORITHM = "HS256"
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user: User
    session_id: int

    @property
    def role(self) -> Role:
        return self.user.role


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < 8 or len(password) > 256:
        raise invalid("A password needs 8 to 256 characters.", "input", "password")
    return _hasher.hash(password)


def normalize_phone(raw: str) -> str:
    """E.164. An 11-digit mainland mobile number without a country code gets +86."""
    phone = re.sub(r"[\s()-]", "", raw or "")
    if re.fullmatch(r"1\d{10}", phone):
        phone = "+86" + phone
    if not _PHONE.fullmatch(phone):
        raise invalid(
            "Not a phone number; use the international form, e.g. +8613800138000.", "input", "phone"
        )
    return phone


def mask_phone(phone: str) -> str:
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"


# --- tokens -------------------------------------------------------------------------------------


async def _issue(user: User, session: Session, config: IdentityConfig) -> Tokens:
    now = clock.now()
    refresh = secrets.token_urlsafe(32)
    await RefreshToken.create(
        session=session,
        token_hash=_sha256(refresh),
        expires_at=now + timedelta(seconds=config.refresh_token_seconds),
    )
    claims = {
        "sub": str(user.id),
        "sid": session.id,
        "role": user.role.value,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + config.access_token_seconds,
        "typ": "access",
    }
    access = jwt.encode(claims, config.secret_key, algorithm=_JWT_ALGORITHM)
    return Tokens(access, refresh, config.access_token_seconds, user)


async def _new_session(user: User, config: IdentityConfig) -> Tokens:
    async with in_transaction():
        session = await Session.create(user=user)
        return await _issue(user, session, config)


async def authenticate(access_token: str, config: IdentityConfig) -> Principal:
    """The caller behind a bearer token, or UNAUTHENTICATED for a missing, forged, expired or revoked one."""
    try:
        claims = jwt.decode(
            access_token,
            config.secret_key,
            algorithms=[_JWT_ALGORITHM],
            # Expiry is checked below against the same clock that issued the token.
            options={"require": ["sub", "sid", "exp", "typ"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token is not valid.") from exc
    if claims.get("typ") != "access" or not isinstance(claims["exp"], int):
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token is not valid.")
    if claims["exp"] <= clock.now().timestamp():
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token has expired.")
    try:
        session_id, user_id = int(claims["sid"]), int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token is not valid.") from exc
    if not (is_row_id(session_id) and is_row_id(user_id)):  # a larger number overflows the driver
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token is not valid.")
    user = await _session_user(session_id, user_id)
    if user is None or not user.is_active:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The session has ended; sign in again.")
    return Principal(user=user, session_id=session_id)


async def _session_user(session_id: int, user_id: int) -> User | None:
    """The user of a live session, in one hand-written statement: every authenticated request runs
    it, and the ORM's query building cost about a millisecond more than the query itself."""
    conn = Session._meta.db
    marks = placeholders(conn, 2)
    rows = await conn.execute_query_dict(
        f"SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id "
        f"WHERE s.id = {marks[0]} AND s.user_id = {marks[1]} AND s.revoked_at IS NULL",
        [session_id, user_id],
    )
    # Built as the ORM builds a fetched row, so the user can be saved and related like any other.
    return User._init_from_db(**rows[0]) if rows else None


async def refresh_tokens(refresh_token: str, config: IdentityConfig) -> Tokens:
    now = clock.now()
    ended = DomainError(ErrorCode.UNAUTHENTICATED, "The refresh token is not valid; sign in again.")
    async with in_transaction():
        token = await RefreshToken.get_or_none(token_hash=_sha256(refresh_token or "")).select_related(
            "session__user"
        )
        if token is None or token.session.revoked_at is not None or not token.session.user.is_active:
            raise ended
        if token.rotated_at is not None:
            # A rotated token came back: someone holds a copy. End the whole family.
            await Session.filter(id=token.session_id).update(revoked_at=now, revoked_reason="reuse")
            reuse = ended
        elif token.expires_at <= now:
            raise ended
        else:
            # Conditional update: of two concurrent refreshes with the same token only one rotates it.
            rotated = await RefreshToken.filter(id=token.id, rotated_at=None).update(rotated_at=now)
            if rotated:
                return await _issue(token.session.user, token.session, config)
            await Session.filter(id=token.session_id).update(revoked_at=now, revoked_reason="reuse")
            reuse = ended
    raise reuse  # outside the transaction, so the revocation is committed


async def sign_out(refresh_token: str) -> None:
    token = await RefreshToken.get_or_none(token_hash=_sha256(refresh_token or ""))
    if token is not None:
        await Session.filter(id=token.session_id, revoked_at=None).update(
            revoked_at=clock.now(), revoked_reason="sign-out"
        )


# --- sign-in ------------------------------------------------------------------------------------


async def register_device(device_key: str, config: IdentityConfig) -> Tokens:
    """An anonymous resident: no personal data, just a random key the app keeps.

    Registering the same key again (a retry, or the app restoring its state) signs in to the same
    account instead of creating another.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]{22,128}", device_key or ""):
        raise invalid("The device key must be 22-128 URL-safe random characters.", "input", "deviceKey")
    key_hash = _sha256(device_key)
    user = await User.get_or_none(device_key_hash=key_hash)
    if user is None:
        try:
            user = await User.create(role=Role.CITIZEN, device_key_hash=key_hash)
        except IntegrityError:  # a concurrent registration of the same key won
            user = await User.get(device_key_hash=key_hash)
    if not user.is_active:
        raise DomainError(ErrorCode.FORBIDDEN, "This device has been blocked.")
    return await _new_session(user, config)


def _login_key(login: str) -> str:
    return login.strip().lower()[:64]


async def sign_in(login: str, password: str, config: IdentityConfig) -> Tokens:
    """Staff and chiefs sign in with a username or a phone number and a password."""
    key = _login_key(login or "")
    since = clock.now() - timedelta(seconds=config.sign_in_window_seconds)
    if await SignInFailure.filter(login=key, created_at__gte=since).count() >= config.sign_in_failures:
        raise DomainError(
            ErrorCode.RATE_LIMITED, "Too many failed attempts; wait a few minutes and try again."
        )
    user = await User.get_or_none(username=login.strip()) if login else None
    if user is None and login:
        try:
            user = await User.get_or_none(phone=normalize_phone(login))
        except DomainError:
            user = None
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password or "")
        ok = user is not None and user.password_hash is not None and user.is_active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        await SignInFailure.create(login=key)
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Wrong login or password.", ["input", "password"])
    assert user is not None
    return await _new_session(user, config)


# --- phone verification -------------------------------------------------------------------------


async def start_phone_verification(user: User, raw_phone: str, config: IdentityConfig) -> OtpChallenge:
    phone = normalize_phone(raw_phone)
    now = clock.now()
    recent = await OtpChallenge.filter(phone=phone, created_at__gte=now - timedelta(hours=1)).count()
    if recent >= config.otp_per_phone_per_hour:
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many codes sent to this number; try again later.")
    code = f"{secrets.randbelow(1_000_000):06d}"
    challenge = await OtpChallenge.create(
        phone=phone,
        code_hash=_sha256(f"{phone}:{code}"),
        user=user,
        expires_at=now + timedelta(seconds=config.otp_seconds),
    )
    await config.otp_sender.send(phone, code)
    return challenge


async def confirm_phone(user: User, raw_phone: str, code: str, config: IdentityConfig) -> User:
    """Attach a verified phone number to the caller. Codes expire, are single-use and allow few attempts."""
    phone = normalize_phone(raw_phone)
    now = clock.now()
    wrong = DomainError(
        ErrorCode.INVALID, "The code is wrong or has expired; request a new one.", ["input", "code"]
    )
    challenge = (
        await OtpChallenge.filter(user_id=user.id, phone=phone, consumed_at=None, expires_at__gt=now)
        .order_by("-created_at")
        .first()
    )
    if challenge is None:
        raise wrong
    if challenge.attempts >= config.otp_max_attempts:
        raise DomainError(
            ErrorCode.RATE_LIMITED, "Too many wrong codes; request a new one.", ["input", "code"]
        )
    # Count the attempt first (conditionally), so parallel guesses cannot exceed the limit.
    counted = await OtpChallenge.filter(
        id=challenge.id, attempts=challenge.attempts, consumed_at=None
    ).update(attempts=challenge.attempts + 1)
    if not counted or not hmac.compare_digest(challenge.code_hash, _sha256(f"{phone}:{code or ''}")):
        raise wrong
    async with in_transaction():
        if not await OtpChallenge.filter(id=challenge.id, consumed_at=None).update(consumed_at=now):
            raise wrong
        holder = await User.get_or_none(phone=phone)
        if holder is not None and holder.id != user.id:
            raise DomainError(
                ErrorCode.CONFLICT,
                "This number belongs to another account; sign in with it instead.",
                ["input", "phone"],
            )
        user.phone = phone
        user.phone_verified_at = now
        await user.save(update_fields=["phone", "phone_verified_at"])
    return user


# --- accounts -----------------------------------------------------------------------------------


async def create_user(
    *,
    role: Role,
    username: str | None,
    password: str | None,
    display_name: str = "",
    phone: str | None = None,
    department_id: int | None = None,
) -> User:
    """Create a signed-in account (staff, dispatcher, chief, admin). Residents register as devices."""
    errors = []
    if role == Role.CITIZEN:
        errors.append(invalid("Residents register from the app, not here.", "input", "role"))
    if username is not None and not _USERNAME.fullmatch(username):
        errors.append(invalid("A username has 3-64 letters, digits, '.', '_' or '-'.", "input", "username"))
    if not username and not phone:
        errors.append(invalid("Give a username or a phone number.", "input", "username"))
    if role == Role.STAFF and department_id is None:
        errors.append(invalid("Staff belong to a department.", "input", "department"))
    if role != Role.STAFF and department_id is not None:
        errors.append(invalid("Only staff belong to a department.", "input", "department"))
    if len(display_name) > 100:
        errors.append(invalid("A display name has at most 100 characters.", "input", "displayName"))
    if errors:
        raise errors[0] if len(errors) == 1 else DomainErrors(errors)
    normalized_phone = normalize_phone(phone) if phone else None
    password_hash = hash_password(password) if password else None
    try:
        return await User.create(
            role=role,
            username=username,
            phone=normalized_phone,
            phone_verified_at=clock.now() if normalized_phone else None,
            password_hash=password_hash,
            display_name=display_name,
            department_id=department_id,
        )
    except IntegrityError as exc:
        raise DomainError(
            ErrorCode.CONFLICT, "That username or phone number is taken.", ["input", "username"]
        ) from exc
