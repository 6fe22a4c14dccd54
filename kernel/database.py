"""The database boundary: what the drivers' exceptions mean, said in the kernel's terms.

Only this module knows the exception types of Tortoise and asyncpg. Everything above it sees a
`DomainError`, so the GraphQL layer and the domains never name a driver.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from asyncpg import exceptions as pg
from tortoise.backends.base.client import NestedTransactionContext, TransactionalDBClient
from tortoise.exceptions import DBConnectionError
from tortoise.transactions import in_transaction

from kernel.errors import DomainError, ErrorCode
from kernel.limits import MAX_ID, MIN_ID

log = logging.getLogger("kernel.database")

# A connection that died under a request: killed (pg_terminate_backend), server restarting, network.
_CONNECTION_LOST = (
    DBConnectionError,
    ConnectionError,
    pg.PostgresConnectionError,
    pg.InterfaceError,
    pg.OperatorInterventionError,
    # A pooled connection whose backend was killed between two uses can fail with a protocol state
    # error ("cannot switch to state 15; another operation (2) is in progress": asyncpg issues 784
    # and 1069) instead of a connection error; the pool discards it like a closed one.
    pg.InternalClientError,
)


def is_row_id(value: int) -> bool:
    """Whether `value` can be a row's id at all (a larger one overflows the drivers)."""
    return MIN_ID <= value <= MAX_ID


def is_connection_lost(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, says the database connection is gone.

    Tortoise re-raises driver errors as its own, so the driver's exception sits in the chain.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _CONNECTION_LOST):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Commits:
    """What one operation's transactions have done so far."""

    started: bool = False


_commits: ContextVar[_Commits | None] = ContextVar("envcase_commits", default=None)
# What to run once the open transaction's work is committed (`after_commit`); one list per block.
_after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar("envcase_after_commit", default=None)


@contextlib.asynccontextmanager
async def atomic() -> AsyncIterator[TransactionalDBClient]:
    """`in_transaction()` that remembers when its COMMIT starts.

    From then on a lost connection leaves the outcome unknown: the server may have committed
    before the answer was lost. A nested block is a savepoint, and only the outermost commits.
    """
    transaction = in_transaction()
    outermost = not isinstance(transaction, NestedTransactionContext)
    enclosing = _after_commit.get()
    hooks: list[Callable[[], None]] = []
    token = _after_commit.set(hooks)
    try:
        async with transaction as connection:
            yield connection
            commits = _commits.get()
            if commits is not None and outermost:
                commits.started = True  # the body is done; leaving the block sends COMMIT
    finally:
        _after_commit.reset(token)
    # Committed (or, for a savepoint, released into the enclosing transaction, which may still roll back).
    if outermost or enclosing is None:
        for hook in hooks:
            _call_safely(hook)
    else:
        enclosing.extend(hooks)


def after_commit(hook: Callable[[], None]) -> None:
    """Call `hook` once the open transaction commits, never if it rolls back; at once outside one."""
    hooks = _after_commit.get()
    if hooks is None:
        _call_safely(hook)
    else:
        hooks.append(hook)


def _call_safely(hook: Callable[[], None]) -> None:
    try:
        hook()
    except Exception:  # the change is committed: a failing listener must not turn it into an error
        log.exception("after-commit hook failed")


UNAVAILABLE_MESSAGE = "The database connection was lost; nothing was saved. Try again."
OUTCOME_UNKNOWN_MESSAGE = (
    "The database connection was lost while the change was being saved: it may or may not have "
    "been saved. Retry with the same clientId (a retry never saves twice), or read the object."
)


@contextlib.asynccontextmanager
async def connection_loss_reported() -> AsyncIterator[None]:
    """Turns a connection lost inside the block into a `DomainError`; other errors pass.

    `UNAVAILABLE` while no transaction of the block has started to commit (the open one died with
    the connection, so nothing was written and a retry is safe); `OUTCOME_UNKNOWN` once one has,
    since the COMMIT may have reached the server.
    """
    commits = _Commits()
    token = _commits.set(commits)
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        if not is_connection_lost(exc):
            raise
        log.warning("database connection lost (commit started: %s): %r", commits.started, exc)
        if commits.started:
            raise DomainError(ErrorCode.OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_MESSAGE) from exc
        raise DomainError(ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE) from exc
    finally:
        _commits.reset(token)
