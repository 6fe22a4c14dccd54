"""Inputs of delivery mutations."""

from __future__ import annotations

import strawberry


@strawberry.input
class DeliveryReplayInput:
    id: strawberry.ID = strawberry.field(description="A dead or cancelled delivery.")
