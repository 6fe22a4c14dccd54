"""The standard Python tus client (`tuspy` from PyPI) against a real server (uvicorn on 127.0.0.1): it
creates an upload, sends a JPEG in several checksummed chunks, resumes in a new uploader after
stopping midway, and the GraphQL finish turns the upload into a photo its owner can read."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient

from tests.graphql_client import DEVICE_REGISTER, gql_sync
from tests.media.phone import FINISH, jpeg
from tests.servers import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path, name="tus")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def test_tuspy_uploads_a_photo_in_chunks_and_resumes(server: Server) -> None:
    data = jpeg((1600, 1200))
    chunk = len(data) // 5 + 1
    with httpx.Client(base_url=server.url, timeout=10) as http:
        register = {"input": {"deviceKey": secrets.token_urlsafe(32)}}
        token = gql_sync(http, DEVICE_REGISTER, register)["deviceRegister"]["accessToken"]
        tus = TusClient(f"{server.url}/uploads", headers={"Authorization": f"Bearer {token}"})
        metadata = {"filename": "IMG_0042.jpg", "filetype": "image/jpeg"}
        first = tus.uploader(
            file_stream=io.BytesIO(data), chunk_size=chunk, metadata=metadata, upload_checksum=True
        )
        first.upload(stop_at=2 * chunk)  # the app is closed midway
        assert first.url is not None and first.offset == 2 * chunk

        resumed = tus.uploader(
            file_stream=io.BytesIO(data), url=first.url, chunk_size=chunk, upload_checksum=True
        )
        assert resumed.offset == 2 * chunk  # asked the server with HEAD
        resumed.upload()
        assert resumed.offset == len(data)

        upload_id = first.url.rsplit("/", 1)[1]
        finished = gql_sync(http, FINISH, {"input": {"uploadId": upload_id}}, token)["photoUploadFinish"]
        assert finished["userErrors"] == []
        display = http.get(finished["photo"]["urls"]["display"], headers={"Authorization": f"Bearer {token}"})
        assert display.status_code == 200 and display.headers["content-type"] == "image/jpeg"
        assert (finished["photo"]["width"], finished["photo"]["height"]) == (1600, 1200)
