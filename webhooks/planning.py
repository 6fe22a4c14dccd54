"""The webhook planner: each outbox row becomes one delivery per enabled endpoint that wants it.

An endpoint wants an event when its `event_types` is empty (every type) or names the event's type,
and its department and category filters (when set) match the case the event is about: the case
itself for `case.*`, the case a finding became for `observation.handed_off`. Events about no case
(`patrol.finished`, `webhook_endpoint.disabled`) reach only endpoints without those filters.

The payload is rendered here, once, from the committed state, in the Standard Webhooks shape
`{"type", "timestamp", "data"}`. It carries no personal information: no reporter, no phone, no
description, and the case's public map location only (coarsened for reports made at homes).
"""

from __future__ import annotations

from typing import Any

from delivery.models import Delivery
from delivery.service import new_delivery
from kernel.outbox import OutboxEvent
from patrols.chain_models import Escalation
from patrols.models import Observation, Patrol, PatrolArea
from reports.models import Case, Category, Department
from webhooks.endpoints import CHANNEL
from webhooks.events import event_type, global_id
from webhooks.models import WebhookEndpoint


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def case_data(case: Case) -> dict[str, Any]:
    """What integrators learn of a case: enough to act on without reading back, nothing personal."""
    category = await Category.get(id=case.category_id).only("id", "code")
    department = (
        await Department.get_or_none(id=case.department_id).only("id", "code")
        if case.department_id is not None
        else None
    )
    return {
        "id": global_id("Case", case.id),
        "reference": case.reference,
        "status": case.status.value,
        "priority": case.priority.name,
        "category": {"id": global_id("Category", category.id), "code": category.code},
        "department": (
            {"id": global_id("Department", department.id), "code": department.code} if department else None
        ),
        "location": {"latitude": case.public_latitude, "longitude": case.public_longitude},
        "public": case.public,
        "reporterCount": case.reporter_count,
        "reportCount": case.report_count,
        "responseDueAt": _iso(case.response_due_at),
        "resolutionDueAt": _iso(case.resolution_due_at),
        "mergedInto": global_id("Case", case.merged_into_id) if case.merged_into_id else None,
        "createdAt": _iso(case.created_at),
        "updatedAt": _iso(case.updated_at),
    }


async def _subject(event: OutboxEvent) -> tuple[Case | None, dict[str, Any]] | None:
    """The case the event is about (for the filters) and the payload's `data`; None when its subject
    is gone (nothing to tell)."""
    if event.subject == "case":
        case = await Case.get_or_none(id=event.subject_id)
        if case is None:
            return None
        return case, {"case": await case_data(case)}
    if event.subject == "observation":
        observation = await Observation.get_or_none(id=event.subject_id)
        case_id = event.data.get("case")
        case = await Case.get_or_none(id=case_id) if case_id is not None else None
        if observation is None or case is None:
            return None
        return case, {
            "observation": {
                "id": global_id("Observation", observation.id),
                "category": observation.category,
                "patrol": global_id("Patrol", observation.patrol_id),
            },
            "case": await case_data(case),
        }
    if event.subject == "patrol":
        patrol = await Patrol.get_or_none(id=event.subject_id)
        if patrol is None:
            return None
        area = await PatrolArea.get(id=patrol.area_id).only("id", "code")
        return None, {
            "patrol": {
                "id": global_id("Patrol", patrol.id),
                "area": {"id": global_id("PatrolArea", area.id), "code": area.code},
                "status": patrol.status.value,
                "startedAt": _iso(patrol.started_at),
                "finishedAt": _iso(patrol.finished_at),
                "distanceM": patrol.distance_m,
            }
        }
    if event.subject == "escalation":
        return await _escalation(event)
    if event.subject == "webhook_endpoint":
        return None, {
            "webhookEndpoint": {
                "id": global_id("WebhookEndpoint", event.subject_id),
                "url": event.data.get("url"),
                "reason": event.data.get("reason"),
            }
        }
    return None, {event.subject: {"id": event.subject_id}}


async def _escalation(event: OutboxEvent) -> tuple[Case | None, dict[str, Any]] | None:
    """A problem reported up the chain: levels, area, the order and its case; no one's name."""
    row = await Escalation.get_or_none(id=event.subject_id)
    if row is None:
        return None
    area = await PatrolArea.get(id=row.area_id).only("id", "code")
    case = await Case.get_or_none(id=row.case_id) if row.case_id is not None else None
    department = (
        await Department.get_or_none(id=row.department_id).only("id", "code")
        if row.department_id is not None
        else None
    )
    return case, {
        "escalation": {
            "id": global_id("Escalation", row.id),
            "status": row.status.value,
            "area": {"id": global_id("PatrolArea", area.id), "code": area.code},
            "fromLevel": row.from_level.value,
            "toLevel": row.to_level.value,
            "department": (
                {"id": global_id("Department", department.id), "code": department.code}
                if department
                else None
            ),
            "deadline": _iso(row.deadline),
            "createdAt": _iso(row.created_at),
        },
        "case": await case_data(case) if case is not None else None,
    }


def wants(endpoint: WebhookEndpoint, type_name: str, case: Case | None) -> bool:
    if endpoint.event_types and type_name not in endpoint.event_types:
        return False
    if endpoint.department_id is not None and (case is None or case.department_id != endpoint.department_id):
        return False
    return endpoint.category_id is None or (case is not None and case.category_id == endpoint.category_id)


async def plan_webhooks(event: OutboxEvent) -> list[Delivery]:
    """The deliveries `event` calls for (unsaved; the planning pass writes them)."""
    endpoints = await WebhookEndpoint.filter(enabled=True).order_by("id")
    if event.subject == "webhook_endpoint":  # an endpoint never hears of its own disabling
        endpoints = [e for e in endpoints if e.id != event.subject_id]
    if not endpoints:
        return []
    type_name = event_type(event)
    if not any(not e.event_types or type_name in e.event_types for e in endpoints):
        return []
    subject = await _subject(event)
    if subject is None:
        return []
    case, data = subject
    payload = {"type": type_name, "timestamp": _iso(event.created_at), "data": data}
    return [
        new_delivery(
            CHANNEL,
            endpoint.id,
            payload,
            event_id=event.id,
            ordering_key=f"{event.subject}:{event.subject_id}",
        )
        for endpoint in endpoints
        if wants(endpoint, type_name, case)
    ]
