"""The GraphQL face of the domain: one schema assembled from each area's Query and Mutation parts."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.config import StrawberryConfig

from schema import enums  # noqa: F401  (gives the domain enums their GraphQL names before any type uses them)
from schema.city.calendar import CityMutation, CityQuery
from schema.context import Info
from schema.delivery.mutations import DeliveryMutation
from schema.delivery.queries import DeliveryQuery
from schema.errors import ErrorPolicy, Schema
from schema.execution import PlainFieldsExecutionContext
from schema.exports.mutations import ExportsMutation
from schema.exports.queries import ExportsQuery
from schema.identity.audit import AccessLogMutation, AccessLogQuery
from schema.identity.mutations import IdentityMutation
from schema.identity.queries import IdentityQuery
from schema.identity.service_accounts import ServiceAccountMutation, ServiceAccountQuery
from schema.media.mutations import MediaMutation
from schema.media.queries import MediaQuery
from schema.node import parse_global_id
from schema.notifications.mutations import NotificationsMutation
from schema.notifications.push import PushMutation, PushQuery
from schema.notifications.queries import NotificationsQuery
from schema.notifications.relay import ContactMutation
from schema.patrols.escalation import EscalationMutation, EscalationQuery
from schema.patrols.mutations import PatrolsMutation
from schema.patrols.office import OfficeMutation, OfficeQuery
from schema.patrols.queries import PatrolsQuery
from schema.reports.mutations import CaseworkMutation, DeadlinesMutation, QueueMutation, ReportsMutation
from schema.reports.queries import QueueQuery, ReportsQuery, StatisticsQuery
from schema.reports.subscriptions import CaseworkSubscription
from schema.trusted.mutations import TrustedMutation
from schema.validation import OperationPolicy, too_complex
from schema.webhooks.mutations import WebhooksMutation
from schema.webhooks.queries import WebhooksQuery


@strawberry.type
class Query(
    IdentityQuery,
    MediaQuery,
    ReportsQuery,
    QueueQuery,
    StatisticsQuery,
    PatrolsQuery,
    EscalationQuery,
    OfficeQuery,
    NotificationsQuery,
    PushQuery,
    WebhooksQuery,
    DeliveryQuery,
    AccessLogQuery,
    ServiceAccountQuery,
    ExportsQuery,
    CityQuery,
):
    @strawberry.field(
        description="Any object by its global id, or null when it is missing or not the caller's."
    )
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        parsed = parse_global_id(str(id))
        if parsed is None:  # not an id we issued: the same answer as a missing object
            return None
        try:
            return await relay.GlobalID(parsed[0], str(parsed[1])).resolve_node(info, required=False)
        except GlobalIDValueError:  # a type that is not a node
            return None


@strawberry.type
class Mutation(
    IdentityMutation,
    MediaMutation,
    ReportsMutation,
    CaseworkMutation,
    QueueMutation,
    DeadlinesMutation,
    PatrolsMutation,
    EscalationMutation,
    OfficeMutation,
    NotificationsMutation,
    PushMutation,
    WebhooksMutation,
    DeliveryMutation,
    ContactMutation,
    AccessLogMutation,
    TrustedMutation,
    ExportsMutation,
    ServiceAccountMutation,
    CityMutation,
):
    pass


@strawberry.type
class Subscription(CaseworkSubscription):
    pass


@functools.cache
def build_schema(
    *,
    production: bool,
    max_depth: int = 12,
    max_tokens: int = 2000,
    max_aliases: int = 15,
    extra_extensions: Sequence[Any] = (),
) -> strawberry.Schema:
    """`extra_extensions`: the server's own (metrics, tracing), run before the others."""
    # The limiters' rule classes are built once: a fresh class per request would change the
    # ValidationCache key and make every request validate its document again.
    limit_rules = [
        too_complex(rule)
        for rule in (
            *QueryDepthLimiter(max_depth=max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        )
    ]
    extensions: list = [
        *extra_extensions,
        lambda: AddValidationRules(limit_rules),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        ValidationCache,
        OperationPolicy,  # parses (cached); after ValidationCache: it reads the validation's result
        lambda: ErrorPolicy(production=production),
    ]
    if production:
        extensions.append(DisableIntrospection)
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
        execution_context_class=PlainFieldsExecutionContext,
    )
