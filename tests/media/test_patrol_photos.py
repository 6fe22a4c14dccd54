"""Photos of a patrol's observations follow the patrol (patrols.access): the chief whose patrol it is
and overseers (admins) see the original and EXIF; a supervising chief sees the photo only; other
chiefs, dispatchers and staff get the answer of a missing photo."""

from __future__ import annotations

from typing import Any

import httpx

from tests.graphql_client import gql_data
from tests.media.phone import NODE, auth, jpeg, upload_simple
from tests.patrols.test_patrols_api import OBSERVE, T0, start
from tests.patrols.test_patrols_api import city as city
from tests.patrols.test_patrols_api import settings as settings
from tests.reports.helpers import db_id

# role -> (sees the photo, sees its original and EXIF)
EXPECTED = {
    "chief.village": (True, True),  # their own patrol
    "chief.county": (True, False),  # supervises river chiefs in the area
    "chief.lake": (False, False),  # another kind of chief
    "admin": (True, True),  # overseer
    "dispatcher": (False, False),
    "water.staff": (False, False),
}


async def test_an_observation_photo_follows_its_patrol(
    client: httpx.AsyncClient, city: dict[str, Any]
) -> None:
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city))["patrol"]
    photo = (await upload_simple(client, token, jpeg()))["photo"]
    seen = {"clientId": "o1", "patrolId": patrol["id"], "category": "FLOATING_RUBBISH",
            "location": {"latitude": 30.26, "longitude": 120.10}, "observedAt": T0.isoformat(),
            "photoIds": [photo["id"]]}  # fmt: skip
    observed = (await gql_data(client, OBSERVE, {"input": seen}, token=token))["patrolObservationRecord"]
    assert observed["userErrors"] == []
    original = f"/media/photos/{db_id(photo['id'])}/original"
    got = {}
    for role in EXPECTED:
        viewer = city["tokens"][role]
        node = (await gql_data(client, NODE, {"id": photo["id"]}, viewer))["node"]
        file = await client.get(original, headers=auth(viewer))
        rendition = await client.get(photo["urls"]["thumb"], headers=auth(viewer))
        evidence = node is not None and node["exifLocation"] is not None
        assert (file.status_code == 200) == evidence and (rendition.status_code == 200) == (node is not None)
        got[role] = (node is not None, evidence)
    assert got == EXPECTED
