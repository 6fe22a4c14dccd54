"""Sign-in, tokens and phone verification.

Access tokens are short-lived JWTs naming the user and the session; every request re-checks that the
session is not revoked. Refresh tokens are opaque, stored hashed, and rotate on use: presenting one
that was already rotated means it leaked, so the whole session is revoked, unless it comes back within
a short grace window (two requests racing), which gets the same new pair.

Throttles count per account, whatever spelling of its login was used, and per client address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
import phonenumbers
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError

from identity import rights
from identity.config import IdentityConfig
from identity.models import OtpChallenge, RefreshToken, Role, Session, SignInFailure, User
from kernel import clock
from kernel.database import atomic, is_row_id
from kernel.errors import DomainError, DomainErrors, ErrorCode, invalid
from kernel.rawsql import placeholders

_hasher = PasswordHasher()
# Verified against when the login is unknown, so a missing user costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")
_JWT_ALGORITHM = "HS256"
# Numbers written without a country code are mainland China's.
_DEFAULT_REGION = "CN"
# What token_urlsafe and _successor make; anything else is refused before it is hashed or looked up.
_REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,128}")
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
    # None for a person; for a service account's key, its scopes (its user is the account's own).
    scopes: frozenset[str] | None = None

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
    """E.164, whatever the spelling: spaces, dashes, brackets, full-width digits, `0086` or `+86`.
    A number without a country code is read as a mainland Chinese one."""
    try:
        number = phonenumbers.parse(raw or "", _DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise invalid(
            "Not a phone number; use the international form, e.g. +8613800138000.", "input", "phone"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str) -> str:
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"


# --- tokens -------------------------------------------------------------------------------------


def _pair(user: User, session_id: int, refresh: str, issued_at: datetime, config: IdentityConfig) -> Tokens:
    """The tokens of one issue; the same arguments make the same access token (a replay in the grace
    window hands out what the first request got)."""
    claims = {
        "sub": str(user.id),
        "sid": session_id,
        "role": user.role.value,
        "iat": int(issued_at.timestamp()),
        "exp": int(issued_at.timestamp()) + config.access_token_seconds,
        "typ": "access",
    }
    access = jwt.encode(claims, config.secret_key, algorithm=_JWT_ALGORITHM)
    return Tokens(access, refresh, config.access_token_seconds, user)


async def _issue(
    user: User,
    session: Session,
    config: IdentityConfig,
    refresh: str | None = None,
    now: datetime | None = None,
) -> Tokens:
    now = now or clock.now()
    refresh = refresh or secrets.token_urlsafe(32)
    await RefreshToken.create(
        session=session,
        token_hash=_sha256(refresh),
        expires_at=now + timedelta(seconds=config.refresh_token_seconds),
    )
    return _pair(user, session.id, refresh, now, config)


def _successor(refresh_token: str, config: IdentityConfig) -> str:
    """The refresh token that replaces `refresh_token`, derived from it with the server's key: a request
    racing the rotation can hand out the same one although only its hash is stored."""
    mac = hmac.new(config.secret_key.encode(), b"refresh:" + refresh_token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


async def _new_session(user: User, config: IdentityConfig) -> Tokens:
    async with atomic():
        session = await Session.create(user=user)
        return await _issue(user, session, config)


async def authenticate(access_token: str, config: IdentityConfig) -> Principal:
    """The caller behind a bearer token, or UNAUTHENTICATED for a missing, forged, expired or revoked one."""
    try:
        claims = jwt.decode(
            access_token,
            config.secret_key,
            algorithms=[_JWT_ALGORITHM],
            # Expiry is checked below against the same clock that issued the token (and that clock's
            # "issued at" is no business of the wall clock's).
            options={"require": ["sub", "sid", "exp", "typ"], "verify_exp": False, "verify_iat": False},
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
        raise _session_ended()
    return Principal(user=user, session_id=session_id)


def _session_ended() -> DomainError:
    return DomainError(ErrorCode.UNAUTHENTICATED, "The session has ended; sign in again.")


async def reauthenticate(principal: Principal) -> Principal:
    """The caller of a long-lived connection, checked again: UNAUTHENTICATED once the session was
    revoked (sign-out, a reused refresh token), the account deactivated, or its role or department
    changed, so a WebSocket ends when its session does rather than when it closes."""
    user = await _session_user(principal.session_id, principal.user.id)
    if (
        user is None
        or not user.is_active
        or user.role != principal.user.role
        or user.department_id != principal.user.department_id
    ):
        raise _session_ended()
    return Principal(user=user, session_id=principal.session_id)


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
    if not _REFRESH_TOKEN.fullmatch(refresh_token or ""):
        raise ended
    async with atomic():
        token = await RefreshToken.get_or_none(token_hash=_sha256(refresh_token)).select_related(
            "session__user"
        )
        if token is None or token.session.revoked_at is not None or not token.session.user.is_active:
            raise ended
        user = token.session.user
        if token.rotated_at is None:
            if token.expires_at <= now:
                raise ended
            # Conditional update: of two concurrent refreshes with the same token only one rotates it;
            # the other waits for it and then finds the token rotated, in the grace window.
            if await RefreshToken.filter(id=token.id, rotated_at=None).update(rotated_at=now):
                return await _issue(user, token.session, config, _successor(refresh_token, config), now)
            token = await RefreshToken.get(id=token.id)
        rotated_at = token.rotated_at
        assert rotated_at is not None
        if now - rotated_at <= timedelta(seconds=config.refresh_grace_seconds):
            successor = _successor(refresh_token, config)
            live = RefreshToken.filter(session_id=token.session_id, token_hash=_sha256(successor))
            if await live.filter(rotated_at=None).exists():
                return _pair(user, token.session_id, successor, rotated_at, config)
        # A rotated token came back late (or after its successor was used): someone holds a copy.
        # End the whole family.
        await Session.filter(id=token.session_id).update(revoked_at=now, revoked_reason="reuse")
    raise ended  # outside the transaction, so the revocation is committed


async def sign_out(refresh_token: str) -> None:
    if not _REFRESH_TOKEN.fullmatch(refresh_token or ""):
        return
    token = await RefreshToken.get_or_none(token_hash=_sha256(refresh_token))
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


async def _account(login: str) -> tuple[User | None, str]:
    """The account a login names and the key its failures are counted under: the account itself,
    whichever spelling of its username or phone number was used; else the canonical login."""
    login = login.strip()
    user = await User.get_or_none(username=login) if _USERNAME.fullmatch(login) else None
    canonical = login.lower()
    if user is None:
        try:
            canonical = normalize_phone(login)
        except DomainError:
            pass
        else:
            user = await User.get_or_none(phone=canonical)
    if user is not None:
        return user, f"account:{user.id}"
    # Hashed: an unknown login is arbitrary text, and only its identity matters.
    return None, "login:" + hashlib.sha256(canonical.encode(errors="surrogatepass")).hexdigest()[:40]


def _address(address: str | None) -> str | None:
    return address[:64] if address else None


async def sign_in(login: str, password: str, config: IdentityConfig, address: str | None = None) -> Tokens:
    """Staff and chiefs sign in with a username or a phone number and a password.

    Failures are counted per account (or unknown login) and per client address; either reaching its
    limit refuses every attempt, the right password too, until the window has passed."""
    user, key = await _account(login or "")
    address = _address(address)
    since = clock.now() - timedelta(seconds=config.sign_in_window_seconds)
    recent = SignInFailure.filter(created_at__gte=since)
    if await recent.filter(login=key).count() >= config.sign_in_failures or (
        address is not None
        and await recent.filter(address=address).count() >= config.sign_in_failures_per_address
    ):
        raise DomainError(
            ErrorCode.RATE_LIMITED, "Too many failed attempts; wait a few minutes and try again."
        )
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password or "")
        ok = user is not None and user.password_hash is not None and user.is_active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        await SignInFailure.create(login=key, address=address)
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Wrong login or password.", ["input", "password"])
    assert user is not None
    return await _new_session(user, config)


# --- phone verification -------------------------------------------------------------------------


async def start_phone_verification(
    user: User, raw_phone: str, config: IdentityConfig, address: str | None = None
) -> OtpChallenge:
    """Send a code to a number the caller wants to add.

    Limited per account and number, per account, per client address and in distinct numbers per
    account and day. The per-number count is the caller's own: strangers asking for someone's number
    (stopped by their own account and address limits) never use up that person's codes. Only a high
    limit across all accounts, against SMS bombing from many addresses, spares no one but the number's
    current holder.
    """
    phone = normalize_phone(raw_phone)
    address = _address(address)
    now = clock.now()
    hour = OtpChallenge.filter(created_at__gte=now - timedelta(hours=1))
    limited = DomainError(ErrorCode.RATE_LIMITED, "Too many codes requested; try again later.")
    if await hour.filter(user_id=user.id, phone=phone).count() >= config.otp_per_phone_per_hour:
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many codes sent to this number; try again later.")
    if await hour.filter(user_id=user.id).count() >= config.otp_per_account_per_hour:
        raise limited
    if address is not None and await hour.filter(address=address).count() >= config.otp_per_address_per_hour:
        raise limited
    day = OtpChallenge.filter(user_id=user.id, created_at__gte=now - timedelta(days=1))
    numbers = {number for (number,) in await day.distinct().values_list("phone")}
    if phone not in numbers and len(numbers) >= config.otp_phones_per_account_per_day:
        raise DomainError(
            ErrorCode.RATE_LIMITED,
            "Codes went to too many numbers from this account today; try again tomorrow.",
            ["input", "phone"],
        )
    if user.phone != phone and (
        await hour.filter(phone=phone).count() >= config.otp_per_phone_all_accounts_per_hour
    ):
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many codes sent to this number; try again later.")
    code = f"{secrets.randbelow(1_000_000):06d}"
    challenge = await OtpChallenge.create(
        phone=phone,
        code_hash=_sha256(f"{phone}:{code}"),
        user=user,
        address=address,
        expires_at=now + timedelta(seconds=config.otp_seconds),
    )
    await config.otp_sender.send(phone, code)
    return challenge


@dataclass(frozen=True)
class PhoneConfirmation:
    """The account that now holds the number, and new tokens when this device moved onto it."""

    user: User
    recovered: Tokens | None = None


async def confirm_phone(
    user: User, raw_phone: str, code: str, config: IdentityConfig, *, end_other_sessions: bool = False
) -> PhoneConfirmation:
    """Attach a verified phone number to the caller. Codes expire, are single-use and allow few attempts.

    A number another account holds answers CONFLICT, except account recovery: when the caller is a
    fresh anonymous device account and the holder an active resident, the code proves the number is
    the caller's, so the device moves onto the holder's account (`rights.recover_onto`: its reports
    come along, the throwaway account is retired) and gets a session of the holder's."""
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
    async with atomic():
        if not await OtpChallenge.filter(id=challenge.id, consumed_at=None).update(consumed_at=now):
            raise wrong
        holder = await User.get_or_none(phone=phone)
        if holder is not None and holder.id != user.id:
            if rights.is_fresh_device_account(user) and rights.may_recover(holder):
                await rights.recover_onto(user, holder, end_other_sessions=end_other_sessions)
                session = await Session.create(user=holder)
                return PhoneConfirmation(holder, await _issue(holder, session, config, now=now))
            raise DomainError(
                ErrorCode.CONFLICT,
                "This number belongs to another account; sign in with it instead.",
                ["input", "phone"],
            )
        user.phone = phone
        user.phone_verified_at = now
        await user.save(update_fields=["phone", "phone_verified_at"])
    return PhoneConfirmation(user)


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
