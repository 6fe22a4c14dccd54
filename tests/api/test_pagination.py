"""Every list is a Relay cursor connection: pageInfo carries both ends, as client pagination helpers expect."""

from __future__ import annotations

from reports.models import Department
from tests.graphql_client import gql_data

PAGE = """
query($after: String) {
  departments(first: 2, after: $after) {
    edges { cursor node { code } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def test_page_info_gives_both_cursors_and_says_when_earlier_rows_exist(client):
    for code in ("a", "b", "c"):
        await Department.create(code=code, name=code.upper())

    first = (await gql_data(client, PAGE))["departments"]
    edges = first["edges"]
    assert len(edges) == 2
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": edges[0]["cursor"],
        "endCursor": edges[1]["cursor"],
    }

    second = (await gql_data(client, PAGE, {"after": first["pageInfo"]["endCursor"]}))["departments"]
    assert [e["node"]["code"] for e in second["edges"]] == ["c"]
    assert second["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": second["edges"][0]["cursor"],
        "endCursor": second["edges"][0]["cursor"],
    }
    codes = {e["node"]["code"] for e in edges} | {"c"}
    assert codes == {"a", "b", "c"}
