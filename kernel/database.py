"""The database boundary: what the drivers' exceptions mean, said in the kernel's terms.

Only this module knows the exception types of Tortoise and asyncpg. Everything above it sees a
`DomainError`, so the GraphQL layer and the domains never name a driver.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from asyncpg import exceptions as pg
from tortoise.exceptions import DBConnectionError

from kernel.errors import DomainError, ErrorCode

log = logging.getLogger("kernel.database")

# A connection that died under a request: killed (pg_terminate_backend), server restarting, network.
_CONNECTION_LOST = (
    DBConnectionError,
    ConnectionError,
    pg.PostgresConnectionError,
    pg.InterfaceError,
    pg.OperatorInterventionError,
)


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


@contextlib.asynccontextmanager
async def connection_lost_as_unavailable() -> AsyncIterator[None]:
    """Turns a connection lost inside the block into `DomainError(UNAVAILABLE)`; other errors pass.

    The transaction died with the connection, so nothing was written and a retry is safe.
    """
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        if not is_connection_lost(exc):
            raise
        log.warning("database connection lost: %r", exc)
        raise DomainError(
            ErrorCode.UNAVAILABLE, "The database connection was lost; nothing was saved. Try again."
        ) from exc
