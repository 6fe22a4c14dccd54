"""The department queue over HTTP: filters, orders, keyset pages while cases arrive, counts, who may see
which queue, the statement budget of a page, assigning and bulk accept.

Cases are seeded as rows (a queue needs many, in states the API would take many steps to reach); every
read and change goes through GraphQL."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from strawberry.relay import to_base64 as relay_id

from identity.models import Role, User
from kernel import clock
from media.intake import derivative_key
from media.models import Photo
from reports.lifecycle import Status
from reports.models import Case, CaseEvent, Category, Department, Priority, Report
from server.settings import Limits, Settings
from tests.conftest import make_settings
from tests.graphql_client import gql, gql_data, new_account
from tests.reports.helpers import db_id, demo_sign_in, resident

pytestmark = pytest.mark.usefixtures("demo")

NOW = datetime(2026, 3, 9, 2, 0, tzinfo=UTC)
MAX_PAGE = 60

ITEM = """id reference status version priority reporterCount thumbnailUrl dueAt overdue createdAt
  category { id code nameZh nameEn } department { id code name } assignee { id displayName }"""
QUEUE = f"""
query($department: ID, $filter: CaseQueueFilter, $order: CaseQueueOrder, $first: Int, $after: String) {{
  departmentQueue(departmentId: $department, filter: $filter, orderBy: $order, first: $first, after: $after) {{
    edges {{ cursor node {{ {ITEM} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
COUNTS = """
query($department: ID, $filter: CaseQueueFilter) {
  departmentQueue(departmentId: $department, filter: $filter, first: 1) {
    statusCounts { status count } totalCount
  }
}"""
ASSIGN = """
mutation($input: CaseAssignInput!) {
  caseAssign(input: $input) { case { id version assignee { id } } userErrors { code field message } }
}"""
ACCEPT = """
mutation($input: CasesAcceptInput!) {
  casesAccept(input: $input) {
    results { caseId case { id status version } userErrors { code field message } }
    userErrors { code field message }
  }
}"""


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return make_settings(
        media_root=tmp_path / "media", limits=Limits(requests_per_minute=100_000, max_page_size=MAX_PAGE)
    )


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_clock(lambda: NOW)
    yield
    clock.set_clock(None)


_seq = iter(range(1, 1_000_000))


async def add_case(
    department: str | None,
    status: Status,
    *,
    category: str = "noise.construction",
    priority: Priority = Priority.NORMAL,
    response_due: datetime | None = None,
    resolution_due: datetime | None = None,
    summary: str = "Pile driving all night",
    at: tuple[float, float] = (30.26, 120.10),
    photos: int = 0,
    reporters: int = 1,
) -> Case:
    """A case row with one report (with `photos` photos when asked), as routing would have left it."""
    n = next(_seq)
    category_row = await Category.get(code=category)
    department_id = (await Department.get(code=department)).id if department else None
    when = NOW - timedelta(hours=1)
    case = await Case.create(
        reference=f"Q-{n:06d}-{secrets.token_hex(2)}",
        category_id=category_row.id,
        latitude=at[0],
        longitude=at[1],
        public_latitude=at[0],
        public_longitude=at[1],
        status=status,
        department_id=department_id,
        priority=priority,
        response_due_at=response_due,
        resolution_due_at=resolution_due,
        reporter_count=reporters,
        summary=summary,
        last_reported_at=when,
        created_at=when,
        updated_at=when,
    )
    reporter = await User.create(role=Role.CITIZEN)
    photo_ids = []
    for _ in range(photos):
        photo = await Photo.create(
            owner_id=reporter.id, sha256=secrets.token_hex(32), format="jpeg", byte_size=1, width=4, height=3
        )
        photo_ids.append(photo.id)
    await Report.create(
        reporter_id=reporter.id,
        client_id=secrets.token_hex(8),
        fingerprint=secrets.token_hex(8),
        category_id=category_row.id,
        case_id=case.id,
        description=summary,
        latitude=at[0],
        longitude=at[1],
        original_latitude=at[0],
        original_longitude=at[1],
        crs="WGS84",
        observed_at=when,
        photo_ids=photo_ids,
        created_at=when,
    )
    return case


def department_id(code_id: int) -> str:
    return relay_id("Department", code_id)


async def dept(code: str) -> str:
    return department_id((await Department.get(code=code)).id)


async def page(client: httpx.AsyncClient, token: str, **variables: Any) -> dict[str, Any]:
    return (await gql_data(client, QUEUE, variables, token=token))["departmentQueue"]


async def all_ids(
    client: httpx.AsyncClient, token: str, first: int, after: str | None = None, **variables: Any
) -> list[int]:
    """Every case of the queue (after the cursor `after`), page by page."""
    ids: list[int] = []
    while True:
        got = await page(client, token, first=first, after=after, **variables)
        ids += [db_id(e["node"]["id"]) for e in got["edges"]]
        assert len(got["edges"]) <= first
        if got["edges"]:  # an edge's cursor resumes the list after it, as the page's end cursor does
            assert got["edges"][-1]["cursor"] == got["pageInfo"]["endCursor"]
        assert len(set(ids)) == len(ids), f"a case came twice: {ids}"
        if not got["pageInfo"]["hasNextPage"]:
            return ids
        after = got["pageInfo"]["endCursor"]


async def error_code(client: httpx.AsyncClient, token: str | None, **variables: Any) -> str:
    body = await gql(client, QUEUE, variables, token=token)
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


# --- what a page shows ------------------------------------------------------------------------------


async def test_a_row_carries_what_the_list_shows(client: httpx.AsyncClient) -> None:
    staff = await demo_sign_in(client, "urban.west")
    routed = await add_case(
        "urban-west", Status.ROUTED, response_due=NOW - timedelta(hours=2), resolution_due=NOW + timedelta(days=5),
        photos=2, reporters=3,
    )  # fmt: skip
    working = await add_case(
        "urban-west", Status.IN_PROGRESS, response_due=NOW - timedelta(days=1), resolution_due=NOW + timedelta(days=2)
    )  # fmt: skip
    colleague = await User.create(role=Role.STAFF, department_id=routed.department_id, display_name="Xu Lan")
    await Case.filter(id=working.id).update(assignee_id=colleague.id)

    got = await page(client, staff, department=await dept("urban-west"))
    nodes = {db_id(e["node"]["id"]): e["node"] for e in got["edges"]}
    assert set(nodes) == {routed.id, working.id}
    first_photo = (await Report.get(case_id=routed.id)).photo_ids[0]
    sha256 = (await Photo.get(id=first_photo)).sha256
    row = nodes[routed.id]
    assert row["thumbnailUrl"] == "http://testserver/media/" + derivative_key(sha256, "thumb")
    assert row["reporterCount"] == 3
    assert row["category"]["code"] == "noise.construction" and row["category"]["nameEn"]
    assert row["department"]["code"] == "urban-west"
    assert row["status"] == "ROUTED" and row["version"] == 1 and row["priority"] == "NORMAL"
    # ROUTED: the response deadline counts (and has passed); worked: the resolution deadline.
    assert datetime.fromisoformat(row["dueAt"]) == NOW - timedelta(hours=2) and row["overdue"] is True
    row = nodes[working.id]
    assert datetime.fromisoformat(row["dueAt"]) == NOW + timedelta(days=2) and row["overdue"] is False
    assert row["thumbnailUrl"] is None
    assert row["assignee"] == {"id": relay_id("User", colleague.id), "displayName": "Xu Lan"}


async def test_status_counts_and_total(client: httpx.AsyncClient) -> None:
    staff = await demo_sign_in(client, "urban.west")
    for status, n in ((Status.ROUTED, 2), (Status.ACCEPTED, 3), (Status.RESOLVED, 1), (Status.CLOSED, 4)):
        for _ in range(n):
            await add_case("urban-west", status)
    await add_case("urban-east", Status.ROUTED)
    await add_case("urban-west", Status.ACCEPTED, category="waste.not_sorting")

    department = await dept("urban-west")
    got = (await gql_data(client, COUNTS, {"department": department}, token=staff))["departmentQueue"]
    counts = {c["status"]: c["count"] for c in got["statusCounts"]}
    assert counts == {"ROUTED": 2, "ACCEPTED": 4, "RESOLVED": 1, "CLOSED": 4}
    assert got["totalCount"] == 6  # the default tabs: the statuses a department works in
    # Counts follow every filter except the statuses; the total follows the statuses too.
    flt = {"categoryCode": "noise.construction", "statuses": ["CLOSED", "ROUTED"]}
    got = await gql_data(client, COUNTS, {"department": department, "filter": flt}, token=staff)
    got = got["departmentQueue"]
    assert {c["status"]: c["count"] for c in got["statusCounts"]} == {
        "ROUTED": 2, "ACCEPTED": 3, "RESOLVED": 1, "CLOSED": 4,
    }  # fmt: skip
    assert got["totalCount"] == 6
    got = await gql_data(client, COUNTS, {"department": department, "filter": {"overdue": True}}, token=staff)
    assert got["departmentQueue"]["statusCounts"] == [] and got["departmentQueue"]["totalCount"] == 0


# --- filters ----------------------------------------------------------------------------------------


async def test_filters(client: httpx.AsyncClient) -> None:
    staff = await demo_sign_in(client, "urban.west")
    past, soon, later = NOW - timedelta(hours=3), NOW + timedelta(hours=5), NOW + timedelta(days=4)
    late_routed = await add_case("urban-west", Status.ROUTED, response_due=past, resolution_due=later)
    late_working = await add_case(
        "urban-west", Status.ACCEPTED, resolution_due=past, priority=Priority.URGENT
    )
    soon_working = await add_case(
        "urban-west", Status.IN_PROGRESS, resolution_due=soon, category="waste.not_sorting",
        summary="Rubble dumped by the CANAL", at=(30.30, 120.05),
    )  # fmt: skip
    no_due = await add_case("urban-west", Status.REOPENED, priority=Priority.HIGH, summary="50% off_sale")
    resolved_late = await add_case("urban-west", Status.RESOLVED, resolution_due=past)
    department = await dept("urban-west")

    async def ids(**flt: Any) -> set[int]:
        return set(await all_ids(client, staff, 50, department=department, filter=flt))

    assert await ids() == {late_routed.id, late_working.id, soon_working.id, no_due.id}
    assert await ids(statuses=["RESOLVED", "ROUTED"]) == {resolved_late.id, late_routed.id}
    assert await ids(categoryCode="waste.not_sorting") == {soon_working.id}
    assert await ids(categoryCode="no.such") == set()
    assert await ids(priorities=["URGENT", "HIGH"]) == {late_working.id, no_due.id}
    # Overdue is about the active deadline: the routed case's resolution is far off, its response late.
    assert await ids(overdue=True) == {late_routed.id, late_working.id}
    assert await ids(overdue=False) == {soon_working.id, no_due.id}
    assert await ids(dueBefore=(NOW + timedelta(days=1)).isoformat()) == {
        late_routed.id, late_working.id, soon_working.id,
    }  # fmt: skip
    # The same moment written in Beijing time: 07:00 UTC is 15:00 +08:00.
    shanghai = (NOW + timedelta(hours=5, minutes=30)).astimezone(timezone(timedelta(hours=8)))
    assert await ids(dueBefore=shanghai.isoformat()) == {late_routed.id, late_working.id, soon_working.id}
    assert await ids(dueBefore=(NOW + timedelta(hours=4)).isoformat()) == {late_routed.id, late_working.id}
    naive = NOW.replace(tzinfo=None).isoformat()
    assert await error_code(client, staff, department=department, filter={"dueBefore": naive}) == "INVALID"
    box = {"minLatitude": 30.29, "minLongitude": 120.0, "maxLatitude": 30.31, "maxLongitude": 120.06}
    assert await ids(bbox=box) == {soon_working.id}
    assert await ids(text="canal") == {soon_working.id}
    reference = (await Case.get(id=late_working.id)).reference
    assert await ids(text=reference.lower()) == {late_working.id}
    # LIKE's wildcards are taken literally.
    assert await ids(text="50% off_") == {no_due.id}
    assert await ids(text="%") == {no_due.id}
    bad = {"minLatitude": 31.0, "minLongitude": 120.0, "maxLatitude": 30.0, "maxLongitude": 121.0}
    assert await error_code(client, staff, department=department, filter={"bbox": bad}) == "INVALID"
    assert await error_code(client, staff, department=department, filter={"text": "x" * 101}) == "INVALID"


# --- orders and keyset pages ------------------------------------------------------------------------


async def _mixed_queue() -> list[Case]:
    cases = []
    for i in range(22):
        status = (Status.ROUTED, Status.ACCEPTED, Status.IN_PROGRESS, Status.REOPENED)[i % 4]
        due = None if i % 5 == 0 else NOW + timedelta(hours=(i * 7) % 11 - 3)  # repeats: ties on due
        cases.append(
            await add_case(
                "urban-west",
                status,
                priority=Priority((i % 3) + 1),
                response_due=due if status is Status.ROUTED else None,
                resolution_due=due if status is not Status.ROUTED else NOW,
            )
        )
    return cases


def _due(case: Case) -> datetime | None:
    return case.response_due_at if case.status is Status.ROUTED else case.resolution_due_at


@pytest.mark.parametrize("first", [1, 4, 50])
async def test_each_order_pages_without_gaps_or_duplicates(client: httpx.AsyncClient, first: int) -> None:
    staff = await demo_sign_in(client, "urban.west")
    cases = [await Case.get(id=c.id) for c in await _mixed_queue()]
    department = await dept("urban-west")
    expected = {
        "CREATED": sorted(cases, key=lambda c: -c.id),
        "PRIORITY": sorted(cases, key=lambda c: (-int(c.priority), -c.id)),
        "DUE": sorted(cases, key=lambda c: (_due(c) is None, _due(c) or NOW, c.id)),
    }
    for order, rows in expected.items():
        got = await all_ids(client, staff, first, department=department, order=order)
        assert got == [c.id for c in rows], order


async def test_pages_stay_put_while_cases_arrive(client: httpx.AsyncClient) -> None:
    staff = await demo_sign_in(client, "urban.west")
    department = await dept("urban-west")
    for i in range(6):
        await add_case("urban-west", Status.ACCEPTED, resolution_due=NOW + timedelta(hours=i))
    for order in ("CREATED", "DUE", "PRIORITY"):
        before = await Case.filter(department_id=db_id(department)).count()
        first = await page(client, staff, department=department, order=order, first=3)
        seen = [db_id(e["node"]["id"]) for e in first["edges"]]
        # New cases arrive: newer than every row (CREATED) and due before every row (DUE).
        newcomer = await add_case("urban-west", Status.ACCEPTED, resolution_due=NOW - timedelta(days=1))
        rest = await all_ids(
            client, staff, 3, department=department, order=order, after=first["pageInfo"]["endCursor"]
        )
        assert not set(seen) & set(rest)
        assert newcomer.id not in rest
        assert len(seen) + len(rest) == before


async def test_page_size_and_cursor_are_checked(client: httpx.AsyncClient) -> None:
    staff = await demo_sign_in(client, "urban.west")
    department = await dept("urban-west")
    for _ in range(3):
        await add_case("urban-west", Status.ACCEPTED)
    assert len((await page(client, staff, department=department, first=MAX_PAGE))["edges"]) == 3
    for first in (0, -1, MAX_PAGE + 1):
        assert await error_code(client, staff, department=department, first=first) == "INVALID"
    cursor = (await page(client, staff, department=department, first=1, order="CREATED"))["pageInfo"][
        "endCursor"
    ]
    for order in ("DUE", "PRIORITY"):  # a cursor of another order
        assert await error_code(client, staff, department=department, order=order, after=cursor) == "INVALID"
    assert await error_code(client, staff, department=department, after="not-a-cursor") == "INVALID"


# --- statements per page ----------------------------------------------------------------------------


class _StatementCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().lstrip().upper()
        if text.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            self.statements.append(record.getMessage())


@contextmanager
def counting_statements() -> Iterator[list[str]]:
    """Every SQL statement the database clients send (Tortoise logs each one at DEBUG)."""
    logger = logging.getLogger("tortoise.db_client")
    handler, level = _StatementCounter(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.statements
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("first", [1, 10, 50])
async def test_a_page_is_at_most_four_statements(client: httpx.AsyncClient, first: int) -> None:
    staff = await demo_sign_in(client, "urban.west")
    colleague = await User.create(role=Role.STAFF, department_id=(await Department.get(code="urban-west")).id)
    for i in range(55):
        case = await add_case(
            "urban-west", (Status.ROUTED, Status.ACCEPTED)[i % 2], photos=i % 3, resolution_due=NOW, response_due=NOW
        )  # fmt: skip
        if i % 4 == 0:
            await Case.filter(id=case.id).update(assignee_id=colleague.id)
    query = QUEUE.replace("pageInfo {", "statusCounts { status count } totalCount pageInfo {")
    for order in ("DUE", "PRIORITY", "CREATED"):
        with counting_statements() as statements:
            data = await gql_data(
                client,
                query,
                {"department": await dept("urban-west"), "first": first, "order": order},
                token=staff,
            )
        assert len(data["departmentQueue"]["edges"]) == first
        assert data["departmentQueue"]["totalCount"] == 55
        assert 1 <= len(statements) <= 4, statements  # sign-in check, the page, the counts
        print(order, first, len(statements), [s[:60] for s in statements])


# --- who sees which queue ---------------------------------------------------------------------------


async def test_who_sees_which_queue(client: httpx.AsyncClient) -> None:
    await add_case("urban-west", Status.ROUTED)
    triaged = await add_case(None, Status.TRIAGE)
    west, east = await dept("urban-west"), await dept("urban-east")
    staff = await demo_sign_in(client, "urban.west")
    assert await error_code(client, staff, department=east) == "NOT_FOUND"
    assert await error_code(client, staff) == "FORBIDDEN"  # the triage queue
    citizen, _ = await resident(client)
    assert await error_code(client, citizen, department=west) == "FORBIDDEN"
    assert await error_code(client, None, department=west) == "UNAUTHENTICATED"
    assert await error_code(client, staff, department=relay_id("Case", 1)) == "INVALID"
    dispatcher = await demo_sign_in(client, "dispatcher")
    assert len((await page(client, dispatcher, department=west))["edges"]) == 1
    assert [db_id(e["node"]["id"]) for e in (await page(client, dispatcher))["edges"]] == [triaged.id]
    assert (await page(client, dispatcher))["edges"][0]["node"]["department"] is None
    assert await error_code(client, dispatcher, department=department_id(999_999)) == "NOT_FOUND"


# --- assigning ----------------------------------------------------------------------------------------


async def test_assign(client: httpx.AsyncClient) -> None:
    case = await add_case("urban-west", Status.ACCEPTED)
    west = await Department.get(code="urban-west")
    staff = await demo_sign_in(client, "urban.west")
    colleague = await new_account(client, Role.STAFF, "urban.west.2", department_id=west.id)
    colleague_id = (await User.get(username="urban.west.2")).id
    case_id = relay_id("Case", case.id)

    async def assign(token: str, assignee: str | None, case: str = case_id) -> dict[str, Any]:
        data = await gql_data(
            client, ASSIGN, {"input": {"caseId": case, "assigneeId": assignee}}, token=token
        )
        return data["caseAssign"]

    done = await assign(staff, relay_id("User", colleague_id))
    assert done["userErrors"] == [] and done["case"]["assignee"] == {"id": relay_id("User", colleague_id)}
    again = await assign(staff, relay_id("User", colleague_id))  # a retry: nothing new
    assert again["userErrors"] == [] and again["case"]["assignee"] == done["case"]["assignee"]
    events = await CaseEvent.filter(case_id=case.id, kind="assigned")
    assert len(events) == 1 and events[0].data == {"assignee": colleague_id, "previous": None}
    got = await page(client, colleague, department=department_id(west.id))
    assert got["edges"][0]["node"]["assignee"]["id"] == relay_id("User", colleague_id)

    outsider = (await User.get(username="urban.east")).id
    refused = await assign(staff, relay_id("User", outsider))
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("INVALID", ["input", "assigneeId"])]
    assert (await assign(staff, relay_id("Case", 5)))["userErrors"][0]["code"] == "INVALID"
    east_staff = await demo_sign_in(client, "urban.east")
    assert (await assign(east_staff, None))["userErrors"][0]["code"] == "NOT_FOUND"
    citizen, _ = await resident(client)
    assert (await assign(citizen, None))["userErrors"][0]["code"] == "NOT_FOUND"
    dispatcher = await demo_sign_in(client, "dispatcher")
    cleared = await assign(dispatcher, None)
    assert cleared["userErrors"] == [] and cleared["case"]["assignee"] is None
    assert await CaseEvent.filter(case_id=case.id, kind="assigned").count() == 2
    triaged = await add_case(None, Status.TRIAGE)
    conflict = await assign(dispatcher, relay_id("User", colleague_id), relay_id("Case", triaged.id))
    assert conflict["userErrors"][0]["code"] == "CONFLICT"


# --- bulk accept --------------------------------------------------------------------------------------


async def test_bulk_accept_with_a_stale_version(client: httpx.AsyncClient) -> None:
    cases = [await add_case("urban-west", Status.ROUTED) for _ in range(3)]
    wrong_state = await add_case("urban-west", Status.IN_PROGRESS)
    staff = await demo_sign_in(client, "urban.west")
    items: list[dict[str, Any]] = [
        {"caseId": relay_id("Case", cases[0].id), "expectedVersion": 1},
        {"caseId": relay_id("Case", cases[1].id), "expectedVersion": 7},  # stale
        {"caseId": relay_id("Case", cases[2].id)},
        {"caseId": relay_id("Case", wrong_state.id), "expectedVersion": 1},
    ]

    async def accept(token: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
        return (await gql_data(client, ACCEPT, {"input": {"cases": cases}}, token=token))["casesAccept"]

    result = await accept(staff, items)
    assert result["userErrors"] == []
    got = result["results"]
    assert [r["caseId"] for r in got] == [i["caseId"] for i in items]
    assert got[0]["case"]["status"] == "ACCEPTED" and got[0]["case"]["version"] == 2
    assert got[1]["case"] is None
    assert [(e["code"], e["field"]) for e in got[1]["userErrors"]] == [
        ("CONFLICT", ["input", "cases", "1", "expectedVersion"])
    ]
    assert got[2]["case"]["status"] == "ACCEPTED" and got[2]["userErrors"] == []
    assert [(e["code"], e["field"]) for e in got[3]["userErrors"]] == [
        ("CONFLICT", ["input", "cases", "3", "caseId"])
    ]
    assert (await Case.get(id=cases[1].id)).status is Status.ROUTED
    # The retry of the same request: accepted cases answer as before, nothing is recorded twice.
    again = (await accept(staff, items[:2]))["results"]
    assert again[0]["case"]["version"] == 2 and again[0]["userErrors"] == []
    assert await CaseEvent.filter(case_id=cases[0].id, kind="accept").count() == 1
    # Another department's case is not there for this staff member.
    east = await add_case("urban-east", Status.ROUTED)
    other = (await accept(staff, [{"caseId": relay_id("Case", east.id)}]))["results"][0]
    assert other["userErrors"][0]["code"] == "NOT_FOUND"
    assert (await Case.get(id=east.id)).status is Status.ROUTED
    # The list is bounded.
    too_many = await accept(staff, [{"caseId": relay_id("Case", cases[0].id)}] * 51)
    assert too_many["results"] == [] and too_many["userErrors"][0]["code"] == "INVALID"
    assert (await accept(staff, []))["userErrors"][0]["code"] == "INVALID"
    bad_id = await accept(staff, [{"caseId": relay_id("Report", 1)}])
    assert bad_id["userErrors"][0]["field"] == ["input", "cases", "0", "caseId"]


# --- the plain-fields executor (schema/execution.py) -------------------------------------------------

# Aliases, a fragment, a skipped and an included field, __typename and the same field twice: the
# selections the plain-fields plan must answer exactly as graphql-core does.
SHAPES = """
query($department: ID, $filter: CaseQueueFilter, $order: CaseQueueOrder, $first: Int, $after: String,
      $withDue: Boolean!) {
  departmentQueue(departmentId: $department, filter: $filter, orderBy: $order, first: $first, after: $after) {
    nodes { ...Row due: dueAt @include(if: $withDue) overdue @skip(if: $withDue) __typename }
    edges { cursor node { id reference } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
fragment Row on CaseQueueItem {
  id reference status version priority reporterCount thumbnailUrl createdAt
  kind: category { code nameZh nameEn code } department { id code name } assignee { id displayName }
}"""


async def test_plain_fields_answer_byte_for_byte_as_graphql_core(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from schema.execution import PlainFieldsExecutionContext

    schema = next(route.endpoint for route in app.routes if route.path == "/graphql").schema
    assert schema.execution_context_class is PlainFieldsExecutionContext
    colleague = None
    for n, status in enumerate([Status.ROUTED, Status.ACCEPTED, Status.IN_PROGRESS, Status.REOPENED] * 3):
        case = await add_case(
            "urban-west", status, priority=list(Priority)[n % len(Priority)], photos=n % 3, reporters=n + 1,
            response_due=NOW - timedelta(hours=n) if n % 2 else None, resolution_due=NOW + timedelta(days=n),
            category="waste.not_sorting" if n % 4 == 1 else "noise.construction",
        )  # fmt: skip
        if n % 3 == 0:
            colleague = colleague or await User.create(
                role=Role.STAFF, department_id=case.department_id, display_name="Xu Lan 徐岚"
            )
            await Case.filter(id=case.id).update(assignee_id=colleague.id)
    await add_case("urban-west", Status.CLOSED)
    await add_case(None, Status.TRIAGE, photos=1)  # no department: a null object
    staff = await demo_sign_in(client, "urban.west")
    dispatcher = await demo_sign_in(client, "dispatcher")
    west = await dept("urban-west")
    first_page = await page(client, staff, department=west, first=5, order="CREATED")
    asks = [
        (staff, {"department": west, "withDue": True}),
        (staff, {"department": west, "withDue": False, "order": "CREATED", "first": 4}),
        (staff, {"department": west, "withDue": True, "after": first_page["pageInfo"]["endCursor"],
                 "order": "CREATED", "first": 5}),
        (staff, {"department": west, "withDue": False, "filter": {"statuses": ["CLOSED", "ROUTED"]}}),
        (staff, {"department": west, "withDue": True, "filter": {"categoryCode": "no.such.category"}}),
        (dispatcher, {"withDue": True}),  # the triage queue
    ]  # fmt: skip

    async def answer(token: str, variables: dict[str, Any]) -> bytes:
        response = await client.post(
            "/graphql",
            json={"query": SHAPES, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200 and b'"errors"' not in response.content, response.text
        return response.content

    plain = [await answer(token, variables) for token, variables in asks]
    assert b'"department":null' in plain[-1] and b'"assignee":{"id"' in plain[0]
    monkeypatch.setattr(schema, "execution_context_class", StrawberryGraphQLCoreExecutionContext)
    core = [await answer(token, variables) for token, variables in asks]
    assert plain == core
