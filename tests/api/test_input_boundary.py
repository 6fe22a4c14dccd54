"""The input boundary (issue 13): hostile ids, strings, cursors, dates and sizes are refused where they
enter, with INVALID and the field at fault, never INTERNAL, and nothing of them is stored."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import pytest_asyncio
from strawberry import relay
from tortoise.context import TortoiseContext

from kernel.limits import MAX_ID
from reports.models import Case, CaseEvent, Priority, Report
from server.seed import seed_demo
from tests.graphql_client import gql_data
from tests.reports.helpers import SUBMIT, db_id, demo_sign_in, report_input, resident, submit_ok

NODE = "query($id: ID!) { node(id: $id) { id } }"
SIGN_IN = """mutation($input: SignInInput!) {
  signIn(input: $input) { accessToken userErrors { code field message } } }"""
REFRESH = """mutation($input: TokenRefreshInput!) {
  tokenRefresh(input: $input) { accessToken userErrors { code field message } } }"""
PRIORITY = """mutation($input: CasePrioritySetInput!) {
  casePrioritySet(input: $input) { case { priority } userErrors { code field message } } }"""
QUEUE = """query($department: ID, $filter: CaseQueueFilter, $after: String, $order: CaseQueueOrder! = DUE) {
  departmentQueue(departmentId: $department, filter: $filter, after: $after, orderBy: $order, first: 5) {
    nodes { reference } } }"""
MY_REPORTS = "query($after: String) { myReports(first: 5, after: $after) { nodes { id } } }"
STATISTICS = "query($input: CaseStatisticsInput!) { caseStatistics(input: $input) { total } }"
PATROL_DAYS = "query($area: ID!, $month: String!) { areaPatrolDays(areaId: $area, month: $month) }"
COMPLIANCE = "query($from: Date!, $to: Date!) { patrolCompliance(from: $from, to: $to) { firstDay } }"

SURROGATE = "\ud800"
NUL = "bad\x00byte"


@pytest_asyncio.fixture
async def demo(db: TortoiseContext) -> None:
    await seed_demo()


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """POST as JSON with ASCII escapes, as a browser's JSON.stringify sends a lone surrogate."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    body = json.dumps({"query": query, "variables": variables or {}})
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    """The one error of a refused query: INVALID, never INTERNAL."""
    assert body.get("data") in (None, {}) or all(v is None for v in body["data"].values()), body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID", error
    return error


async def user_errors(
    client: httpx.AsyncClient, query: str, input: Any, token: str | None = None
) -> list[Any]:
    body = await gql(client, query, {"input": input}, token=token)
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    assert payload["userErrors"], payload
    return payload["userErrors"]


# Global ids


def spellings(type_name: str, pk: int) -> list[str]:
    """Every other spelling of one object's id: padded, signed, spaced, separated, re-padded base64."""
    canonical = relay.to_base64(type_name, pk)
    digits = str(pk)
    forms = [f"0{digits}", f"+{digits}", f" {digits}", f"{digits} ", f"{digits}\n", f"{digits}.0"]
    if len(digits) > 1:
        forms.append(f"{digits[0]}_{digits[1:]}")
    forms.append(f"{digits}_0")  # int() reads this as another id: still not ours
    return [b64(f"{type_name}:{form}") for form in forms] + [
        canonical + "!!",
        canonical.rstrip("=") if canonical.endswith("=") else canonical + "==",
        " " + canonical,
        canonical + "\n",
    ]


async def test_only_the_canonical_spelling_of_a_global_id_resolves(client: httpx.AsyncClient) -> None:
    token, pk = await resident(client)
    canonical = relay.to_base64("User", pk)
    assert (await gql_data(client, NODE, {"id": canonical}, token))["node"] == {"id": canonical}
    for spelling in spellings("User", pk):
        body = await gql(client, NODE, {"id": spelling}, token)
        assert body == {"data": {"node": None}}, (spelling, body)


@pytest.mark.parametrize(
    "node_id", [str(MAX_ID + 1), str(2**64), "9" * 40, "-1", "0", "-9223372036854775809"]
)
async def test_ids_outside_the_database_range_are_missing_objects(
    client: httpx.AsyncClient, node_id: str
) -> None:
    token, _ = await resident(client)
    for type_name in ("User", "Case", "Photo", "Nope"):
        body = await gql(client, NODE, {"id": b64(f"{type_name}:{node_id}")}, token)
        assert body == {"data": {"node": None}}, body


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize("node_id", [str(MAX_ID), str(MAX_ID + 1), str(2**63 - 1)])
async def test_ids_at_the_edge_of_the_key_range_are_missing_for_staff_too(
    client: httpx.AsyncClient, node_id: str
) -> None:
    """Staff reach the row loaders residents never get to (a PostgreSQL INTEGER parameter overflowed)."""
    token = await demo_sign_in(client, "admin")
    for type_name in ("User", "Case", "Department"):
        body = await gql(client, NODE, {"id": b64(f"{type_name}:{node_id}")}, token)
        assert body == {"data": {"node": None}}, body


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize("node_id", [str(MAX_ID + 1), "0", "-5", "01", "1_0"])
async def test_an_id_input_out_of_range_or_not_canonical_is_invalid(
    client: httpx.AsyncClient, node_id: str
) -> None:
    token, _ = await resident(client)
    bad = b64(f"Photo:{node_id}")
    errors = await user_errors(client, SUBMIT, report_input(photoIds=[bad]), token)
    assert errors == [
        {"code": "INVALID", "field": ["input", "photoIds", "0"], "message": "Not the id of a Photo."}
    ]
    errors = await user_errors(client, SUBMIT, report_input(joinCase=b64(f"PublicCase:{node_id}")), token)
    assert errors[0]["code"] == "INVALID" and errors[0]["field"] == ["input", "joinCase"]
    dispatcher = await demo_sign_in(client, "dispatcher")
    error = refusal(await gql(client, QUEUE, {"department": bad}, dispatcher))
    assert error["extensions"]["field"] == ["departmentId"]
    assert await Report.all().count() == 0


# Text: lone surrogates, NUL, lengths


@pytest.mark.parametrize("bad", [SURROGATE, f"ok{SURROGATE}ok", "\udfff", NUL])
async def test_sign_in_and_refresh_refuse_unstorable_text(client: httpx.AsyncClient, bad: str) -> None:
    errors = await user_errors(client, SIGN_IN, {"login": bad, "password": bad})
    assert {tuple(e["field"]) for e in errors} == {("input", "login"), ("input", "password")}
    assert {e["code"] for e in errors} == {"INVALID"}
    errors = await user_errors(client, REFRESH, {"refreshToken": bad})
    assert errors[0]["code"] == "INVALID" and errors[0]["field"] == ["input", "refreshToken"]


async def test_text_written_into_the_document_is_checked_too(client: httpx.AsyncClient) -> None:
    literal = 'mutation { signIn(input: {login: "a\\u0000b", password: "%s"}) { userErrors { code field } } }'
    body = await gql(client, literal % ("p" * 2000))
    assert body["data"]["signIn"]["userErrors"] == [
        {"code": "INVALID", "field": ["input", "login"]},
        {"code": "INVALID", "field": ["input", "password"]},
    ]
    body = await gql(client, literal % "\\ud800")  # GraphQL's own parser refuses a lone surrogate escape
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_one_document_is_checked_anew_with_each_requests_variables(client: httpx.AsyncClient) -> None:
    # The document's own part of the check is worked out once; each request's values are still checked.
    query = """mutation($login: String! = "a\\u0000b", $password: String!) {
      signIn(input: {login: $login, password: $password}) { userErrors { code field } } }"""

    async def invalid_fields(variables: dict[str, str]) -> list[list[str]]:
        errors = (await gql(client, query, variables))["data"]["signIn"]["userErrors"]
        return [e["field"] for e in errors if e["code"] == "INVALID"]

    assert await invalid_fields({"password": "p"}) == [["input", "login"]]  # the default
    assert await invalid_fields({"login": "someone", "password": "p" * 2000}) == [["input", "password"]]
    assert await invalid_fields({"login": "someone", "password": "p"}) == []
    assert await invalid_fields({"login": NUL, "password": SURROGATE}) == [
        ["input", "login"],
        ["input", "password"],
    ]


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": f"noise {SURROGATE}"}, ["input", "description"]),
        ({"description": NUL}, ["input", "description"]),
        ({"clientId": NUL}, ["input", "clientId"]),
        ({"categoryCode": "x" * 1_000_000}, ["input", "categoryCode"]),
        ({"clientId": "c" * 65}, ["input", "clientId"]),
        ({"evidence": {"measured_db": 70, "details": NUL}}, ["input", "evidence", "details"]),
        ({"evidence": {SURROGATE: 1}}, ["input", "evidence"]),
        ({"observedAt": "0001-01-01T00:00:00+01:00"}, ["input", "observedAt"]),
        ({"observedAt": "9999-12-31T23:00:00-05:00"}, ["input", "observedAt"]),
    ],
)
async def test_a_submission_with_unstorable_input_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, changes: dict[str, Any], field: list[str]
) -> None:
    token, _ = await resident(client)
    errors = await user_errors(client, SUBMIT, report_input("noise.construction", **changes), token)
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID", field)]
    assert await Report.all().count() == 0 and await Case.all().count() == 0


@pytest.mark.usefixtures("demo")
async def test_a_hundred_thousand_key_evidence_object_gets_one_error(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    evidence = {f"k{i}": i for i in range(100_000)}
    errors = await user_errors(client, SUBMIT, report_input(evidence=evidence), token)
    assert errors == [
        {"code": "INVALID", "field": ["input", "evidence"], "message": "At most 200 keys in one object."}
    ]


@pytest.mark.usefixtures("demo")
async def test_a_megabyte_note_on_a_dispatcher_action_is_refused(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    case_id = (await submit_ok(client, token, report_input()))["case"]["id"]
    events = await CaseEvent.filter(case_id=db_id(case_id)).count()
    dispatcher = await demo_sign_in(client, "dispatcher")
    for note in ("n" * 1_000_000, NUL, SURROGATE):
        errors = await user_errors(
            client, PRIORITY, {"caseId": case_id, "priority": "URGENT", "note": note}, dispatcher
        )
        assert [(e["code"], e["field"]) for e in errors] == [("INVALID", ["input", "note"])]
    assert await CaseEvent.filter(case_id=db_id(case_id)).count() == events
    assert (await Case.get(id=db_id(case_id))).priority != Priority.URGENT


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    "filter", [{"text": "q" * 1_000_000}, {"categoryCode": "c" * 1_000_000}, {"text": NUL}]
)
async def test_megabyte_or_unstorable_filters_are_invalid(
    client: httpx.AsyncClient, filter: dict[str, str]
) -> None:
    dispatcher = await demo_sign_in(client, "dispatcher")
    error = refusal(await gql(client, QUEUE, {"filter": filter}, dispatcher))
    assert error["extensions"]["field"] == ["filter", next(iter(filter))]


async def test_a_refusal_lists_a_bounded_number_of_problems(client: httpx.AsyncClient) -> None:
    query = (
        "query($ids: [String!]) { publicCases(bbox: {minLatitude: 0, minLongitude: 0, maxLatitude: 1, "
        "maxLongitude: 1}, categoryCodes: $ids) { nodes { reference } } }"
    )
    body = await gql(client, query, {"ids": [NUL] * 10_000})
    assert 1 <= len(body["errors"]) <= 20
    assert {e["extensions"]["code"] for e in body["errors"]} == {"INVALID"}


# Cursors


def cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


FORGED = [
    cursor([MAX_ID + 1]),
    cursor([-(2**64)]),
    cursor(["abc"]),
    cursor([[1]]),
    cursor([{"dt": "0001-01-01T00:00:00+01:00"}]),
    cursor([{"dt": 5}]),
    cursor([True]),
    cursor([1, 2]),
    cursor([float("inf")]),
    "x" * 10_000,
    cursor({"id": 1}),
    cursor("x" * 150),
    base64.urlsafe_b64encode(b"[" * 100_000).decode()[:190],
    base64.urlsafe_b64encode(("[" * 60 + "]" * 60).encode()).decode(),
    "%%%",
    SURROGATE,
]


@pytest.mark.parametrize("after", FORGED)
async def test_a_forged_cursor_is_invalid_on_after(client: httpx.AsyncClient, after: str) -> None:
    token, _ = await resident(client)
    error = refusal(await gql(client, MY_REPORTS, {"after": after}, token))
    assert error["extensions"]["field"] == ["after"]


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    ("order", "key"),
    [
        ("CREATED", [MAX_ID + 1]),
        ("CREATED", ["1"]),
        ("PRIORITY", [1, [2]]),
        ("PRIORITY", [2**70, 1]),
        ("DUE", [0, {"dt": "9999-12-31T23:00:00-05:00"}, 1]),
        ("DUE", [0, {"dt": "0001-01-01T00:00:00+01:00"}, 1]),
        ("DUE", [0, {"dt": "2026-01-01T00:00:00"}, 1]),
        ("DUE", [0, {"dt": "2026-01-01T00:00:00+00:00", "x": 1}, 1]),
    ],
)
async def test_a_forged_queue_cursor_is_invalid_on_after(
    client: httpx.AsyncClient, order: str, key: list[Any]
) -> None:
    dispatcher = await demo_sign_in(client, "dispatcher")
    error = refusal(await gql(client, QUEUE, {"after": cursor(key), "order": order}, dispatcher))
    assert error["extensions"]["field"] == ["after"]


# Dates at the calendar's edges


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    ("period", "field"),
    [
        ({"from": "0001-01-01", "to": "2026-02-01"}, ["input", "from"]),
        ({"from": "2026-01-01", "to": "9999-12-31"}, ["input", "to"]),
    ],
)
async def test_statistics_periods_at_the_calendar_edges_are_invalid(
    client: httpx.AsyncClient, period: dict[str, str], field: list[str]
) -> None:
    dispatcher = await demo_sign_in(client, "dispatcher")
    error = refusal(await gql(client, STATISTICS, {"input": period}, dispatcher))
    assert error["extensions"]["field"] == field


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "0001-01", "2026-13", "2026-1"])
async def test_a_month_at_the_calendar_edges_is_invalid(client: httpx.AsyncClient, month: str) -> None:
    error = refusal(
        await gql(client, PATROL_DAYS, {"area": relay.to_base64("PatrolArea", 1), "month": month})
    )
    assert error["extensions"]["field"] == ["month"]


async def test_compliance_ranges_at_the_calendar_edges_are_invalid(client: httpx.AsyncClient) -> None:
    error = refusal(await gql(client, COMPLIANCE, {"from": "0001-01-01", "to": "2026-01-01"}))
    assert error["extensions"]["field"] == ["from"]
    error = refusal(await gql(client, COMPLIANCE, {"from": "2026-01-01", "to": "9999-12-31"}))
    assert error["extensions"]["field"] == ["to"]


async def test_patrol_times_at_the_calendar_edges_are_invalid(client: httpx.AsyncClient) -> None:
    start = (
        """mutation($input: PatrolStartInput!) { patrolStart(input: $input) { userErrors { code field } } }"""
    )
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        errors = await user_errors(
            client,
            start,
            {
                "clientId": "c1",
                "areaId": relay.to_base64("PatrolArea", 1),
                "mode": "FOOT",
                "startedAt": moment,
            },
        )
        assert errors == [{"code": "INVALID", "field": ["input", "startedAt"]}]
