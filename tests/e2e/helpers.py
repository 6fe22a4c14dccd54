"""Steps of the end-to-end tests over a real server's GraphQL API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.graphql_client import gql_data
from tests.reports.helpers import WEST, report_input, submit_ok

TRANSITION = """mutation($input: CaseTransitionInput!) {
  caseTransition(input: $input) { case { id status version reference } userErrors { code field message } } }"""
RATE = """mutation($input: CaseRateInput!) {
  caseRate(input: $input) { case { id } userErrors { code field message } } }"""
CASE_EVENTS = """query($id: ID!) { node(id: $id) { ... on Case { status events { kind } } } }"""
DELIVERIES = """query($status: DeliveryStatus, $channel: String) {
  deliveries(status: $status, channel: $channel, first: 100) {
    nodes { id channel targetId status attempts lastError orderingKey } } }"""
DELIVERY_REPLAY = """mutation($input: DeliveryReplayInput!) {
  deliveryReplay(input: $input) { delivery { id status attempts } userErrors { code field message } } }"""
ENDPOINTS = """{ webhookEndpoints(first: 20) { nodes { id url enabled disabledReason } } }"""


async def step(client: httpx.AsyncClient, token: str, case_id: str, action: str, **extra: Any) -> dict:
    data = await gql_data(
        client, TRANSITION, {"input": {"caseId": case_id, "action": action, **extra}}, token
    )
    result = data["caseTransition"]
    assert result["userErrors"] == [], (action, result["userErrors"])
    return result["case"]


async def new_case(
    client: httpx.AsyncClient, token: str, at: tuple[float, float] = WEST, category: str = "noise.neighbour"
) -> dict:
    """A report in the West District (police-west handles neighbours' noise there); returns its case."""
    submitted = await submit_ok(client, token, report_input(category, at, description="Loud music at 2 am"))
    assert submitted["case"]["department"]["code"] == "police-west", submitted
    return submitted["case"]


async def work_to_resolved(client: httpx.AsyncClient, staff: str, case_id: str) -> dict:
    for action in ("ACCEPT", "START"):
        await step(client, staff, case_id, action)
    return await step(client, staff, case_id, "RESOLVE", note="Spoke to the neighbours; music off at 22:00")


async def rate(client: httpx.AsyncClient, token: str, case_id: str, rating: int) -> None:
    data = await gql_data(client, RATE, {"input": {"caseId": case_id, "rating": rating}}, token)
    assert data["caseRate"]["userErrors"] == [], data


async def case_events(client: httpx.AsyncClient, staff: str, case_id: str) -> list[str]:
    node = (await gql_data(client, CASE_EVENTS, {"id": case_id}, token=staff))["node"]
    return [event["kind"] for event in node["events"]]


async def deliveries(
    client: httpx.AsyncClient, admin: str, status: str | None = None, channel: str | None = None
) -> list[dict[str, Any]]:
    data = await gql_data(client, DELIVERIES, {"status": status, "channel": channel}, token=admin)
    return data["deliveries"]["nodes"]


async def endpoints(client: httpx.AsyncClient, admin: str) -> list[dict[str, Any]]:
    return (await gql_data(client, ENDPOINTS, token=admin))["webhookEndpoints"]["nodes"]
