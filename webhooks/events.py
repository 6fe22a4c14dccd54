"""The event types integrators see, in one place: each outbox kind's dotted name, and the global ids
payloads carry.

A type is `<subject>.<what happened>` (`case.submitted`, `patrol.finished`). The names are part of the
public contract (docs/webhooks.md): add new ones, never rename one.
"""

from __future__ import annotations

import base64

from kernel.outbox import OutboxEvent

WEBHOOK_DISABLED = "webhook_disabled"  # the outbox kind written when an endpoint is disabled

# (outbox subject, outbox kind) -> the event type sent.
EVENT_TYPES: dict[tuple[str, str], str] = {
    ("case", "submit"): "case.submitted",
    ("case", "route"): "case.routed",
    ("case", "triage"): "case.triaged",
    ("case", "reroute"): "case.rerouted",
    ("case", "accept"): "case.accepted",
    ("case", "return"): "case.returned",
    ("case", "start"): "case.started",
    ("case", "resolve"): "case.resolved",
    ("case", "verify_pass"): "case.verified",
    ("case", "verify_fail"): "case.verification_failed",
    ("case", "confirm"): "case.confirmed",
    ("case", "dispute"): "case.disputed",
    ("case", "auto_close"): "case.auto_closed",
    ("case", "reject"): "case.rejected",
    ("case", "merge"): "case.merged",
    ("case", "merged_in"): "case.merged_in",
    ("case", "report_added"): "case.report_added",
    ("case", "report_split"): "case.report_split",
    ("case", "assigned"): "case.assigned",
    ("case", "category_changed"): "case.category_changed",
    ("case", "priority_changed"): "case.priority_changed",
    ("case", "extension_requested"): "case.extension_requested",
    ("case", "extension_approved"): "case.extension_approved",
    ("case", "extension_declined"): "case.extension_declined",
    ("case", "reminded"): "case.reminded",
    ("case", "escalated"): "case.escalated",
    ("case", "rated"): "case.rated",
    ("patrol", "patrol_finished"): "patrol.finished",
    ("observation", "observation_handed_off"): "observation.handed_off",
    ("case", "ordered"): "case.ordered",
    ("escalation", "escalation_reported"): "escalation.reported",
    ("escalation", "escalation_assigned"): "escalation.assigned",
    ("webhook_endpoint", WEBHOOK_DISABLED): "webhook_endpoint.disabled",
}

KNOWN_EVENT_TYPES: frozenset[str] = frozenset(EVENT_TYPES.values())


def event_type(event: OutboxEvent) -> str:
    """The dotted type of an outbox row; a kind added later without a name here still goes out, as
    `<subject>.<kind>` (to endpoints that hear every type)."""
    return EVENT_TYPES.get((event.subject, event.kind), f"{event.subject}.{event.kind}")


def global_id(type_name: str, row_id: int) -> str:
    """The API's global id of a row (as `node(id:)` takes it): base64 of `Type:id`, as schema.node
    issues them."""
    return base64.b64encode(f"{type_name}:{row_id}".encode()).decode()
