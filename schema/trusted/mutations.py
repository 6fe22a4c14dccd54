"""Registering trusted documents (persisted operations) over GraphQL. Admins only."""

from __future__ import annotations

import strawberry

from identity.models import Role
from schema.context import Info
from schema.errors import UserError, payload_mutation
from trusted import service


@strawberry.input(description="One operation document and its id, as an app's build lists them.")
class TrustedDocumentInput:
    document_id: str = strawberry.field(description="sha256:<hex> of the document (or the bare hex).")
    document: str = strawberry.field(description="The document text, exactly as the app's build hashed it.")


@strawberry.input
class TrustedDocumentsRegisterInput:
    documents: list[TrustedDocumentInput]


@strawberry.type
class TrustedDocumentsRegisterPayload:
    added: int | None = strawberry.field(default=None, description="Documents registered by this call.")
    already_registered: int | None = strawberry.field(
        default=None, description="Documents that were registered before (left as they were)."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class TrustedMutation:
    @payload_mutation(
        "Register the operation documents an app build sends by id (documentId, or Apollo's "
        "persistedQuery hash). All or nothing: an id that is not its document's sha256 registers none. "
        "Registering again changes nothing. Admins only."
    )
    async def trusted_documents_register(
        self, info: Info, input: TrustedDocumentsRegisterInput
    ) -> TrustedDocumentsRegisterPayload:
        info.context.require_role(Role.ADMIN)
        registration = await service.register([(item.document_id, item.document) for item in input.documents])
        return TrustedDocumentsRegisterPayload(
            added=registration.added, already_registered=registration.already_registered
        )
