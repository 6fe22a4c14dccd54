"""Root query fields of media: none yet (photos are reached through what holds them, or `node`)."""

from __future__ import annotations

import strawberry


@strawberry.type
class MediaQuery:
    pass
