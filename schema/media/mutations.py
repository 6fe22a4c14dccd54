"""Photo upload mutations (one-shot multipart and resumable) and their payloads."""

from __future__ import annotations

import strawberry
from starlette.datastructures import UploadFile

from kernel.errors import invalid
from media.intake import PhotoIntake
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.media.inputs import PhotoUploadFinishInput, PhotoUploadInput, PhotoUploadStartInput
from schema.media.types import PhotoNode, PhotoUpload


@strawberry.type
class PhotoUploadStartPayload:
    upload: PhotoUpload | None = strawberry.field(default=None, description="Null when `photo` is set.")
    photo: PhotoNode | None = strawberry.field(
        default=None, description="Set when you already uploaded these bytes: nothing to send."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PhotoUploadPayload:
    photo: PhotoNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _intake(info: Info) -> PhotoIntake:
    services = info.context.services
    assert services is not None and services.media is not None, "the server wires Services.media"
    return services.media


@strawberry.type
class MediaMutation:
    @payload_mutation("Open a resumable photo upload, or get your photo of these bytes at once.")
    async def photo_upload_start(self, info: Info, input: PhotoUploadStartInput) -> PhotoUploadStartPayload:
        principal = info.context.require_principal()
        started = await _intake(info).start_upload(
            principal.user.id, byte_size=input.byte_size, sha256=input.sha256, client_id=input.client_id
        )
        if started.photo is not None:
            return PhotoUploadStartPayload(photo=PhotoNode.from_model(started.photo))
        assert started.session is not None
        return PhotoUploadStartPayload(upload=PhotoUpload.from_model(started.session, info))

    @payload_mutation("Check and process a fully sent upload into a Photo; finishing again returns it.")
    async def photo_upload_finish(self, info: Info, input: PhotoUploadFinishInput) -> PhotoUploadPayload:
        principal = info.context.require_principal()
        photo = await _intake(info).finish_upload(principal.user.id, str(input.upload_id))
        return PhotoUploadPayload(photo=PhotoNode.from_model(photo))

    @payload_mutation("Upload a small photo in one multipart request (resumable uploads suit big ones).")
    async def photo_upload(self, info: Info, input: PhotoUploadInput) -> PhotoUploadPayload:
        principal = info.context.require_principal()
        if not isinstance(input.file, UploadFile):  # the Upload scalar lets a plain JSON value through
            raise invalid("Send the photo as a multipart file.", "input", "file")
        photo = await _intake(info).upload_file(principal.user.id, input.file, "input", "file")
        return PhotoUploadPayload(photo=PhotoNode.from_model(photo))
