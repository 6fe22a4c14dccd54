"""Mutations of patrols: offline recording, observations and hand-offs, areas, assignments, delegation."""

from __future__ import annotations

import strawberry

from identity.models import Role, User
from kernel import clock
from kernel.errors import forbidden
from patrols import access, admin, areas, handoff, recording
from schema.context import Info
from schema.errors import UserError, payload_mutation, user_errors
from schema.node import decode_id
from schema.patrols.inputs import (
    ChiefAssignmentCreateInput,
    ChiefAssignmentEndInput,
    PatrolAreaImportInput,
    PatrolDelegationCreateInput,
    PatrolDelegationEndInput,
    PatrolFinishInput,
    PatrolGpxImportInput,
    PatrolObservationEscalateInput,
    PatrolObservationHandleOnSpotInput,
    PatrolObservationRecordInput,
    PatrolStartInput,
    PatrolTimeInput,
    PatrolTrackAppendInput,
    VolunteerEnrollmentCreateInput,
    VolunteerEnrollmentEndInput,
)
from schema.patrols.types import (
    ChiefAssignmentNode,
    ObservationNode,
    PatrolAreaNode,
    PatrolDelegation,
    PatrolNode,
    SeqRange,
    VolunteerEnrollmentNode,
    seq_ranges,
)


@strawberry.type
class PatrolPayload:
    patrol: PatrolNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolTrackAppendPayload:
    patrol: PatrolNode | None = None
    stored: int = strawberry.field(default=0, description="New points stored by this call.")
    duplicates: int = strawberry.field(default=0, description="Points the server already held, identical.")
    held_ranges: list[SeqRange] | None = strawberry.field(
        default=None, description="All sequence numbers the server holds for the patrol."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Per refused point (field: input.points.<index>); the rest were stored.",
    )


@strawberry.type
class ObservationPayload:
    observation: ObservationNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolGpxImportPayload:
    patrol: PatrolNode | None = None
    imported: int = 0
    duplicates_skipped: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolAreaImportPayload:
    areas: list[PatrolAreaNode] | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ChiefAssignmentPayload:
    assignment: ChiefAssignmentNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolDelegationPayload:
    delegation: PatrolDelegation | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class VolunteerEnrollmentPayload:
    enrollment: VolunteerEnrollmentNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _chief(info: Info) -> User:
    """The recording account: a chief, staff patrolling as a chief's assistant, or a social
    supervisor (民间河长) in an area they are enrolled in."""
    return info.context.require_role(Role.CHIEF, Role.STAFF, Role.VOLUNTEER).user


async def _office(info: Info) -> User:
    """An admin or a clerk of a chief office (河长办/林长办): they enroll social supervisors."""
    principal = info.context.require_principal()
    if not (await access.viewer_of(principal)).overseer:
        raise forbidden("Only admins and the chief office enroll social supervisors.")
    return principal.user


@strawberry.type
class PatrolsMutation:
    @payload_mutation("Start a patrol of an assigned area (or one delegated to you). Retry-safe by clientId.")
    async def patrol_start(self, info: Info, input: PatrolStartInput) -> PatrolPayload:
        patrol = await recording.start_patrol(
            _chief(info),
            client_id=input.client_id,
            area_id=decode_id(input.area_id, "PatrolArea", "input", "areaId"),
            mode=input.mode,
            started_at=input.started_at,
            sent_at=input.sent_at,
        )
        return PatrolPayload(patrol=PatrolNode.from_model(patrol))

    @payload_mutation(
        "Upload a batch of track points, at any time, also after the finish. Each point is stored once; a "
        "repeated seq with other data is refused for that point only. The answer lists the held seqs."
    )
    async def patrol_track_append(
        self, info: Info, input: PatrolTrackAppendInput
    ) -> PatrolTrackAppendPayload:
        points = input.to_domain()
        result = await recording.append_points(
            _chief(info),
            decode_id(input.patrol_id, "Patrol", "input", "patrolId"),
            points,
            sent_at=input.sent_at,
            input_name=input.given_as,
        )
        return PatrolTrackAppendPayload(
            patrol=PatrolNode.from_model(result.patrol),
            stored=result.stored,
            duplicates=result.duplicates,
            held_ranges=seq_ranges(result.patrol.held_ranges),
            user_errors=[e for error in result.errors for e in user_errors(error)],
        )

    @payload_mutation("Pause recording (retry-safe).")
    async def patrol_pause(self, info: Info, input: PatrolTimeInput) -> PatrolPayload:
        patrol_id = decode_id(input.patrol_id, "Patrol", "input", "patrolId")
        return PatrolPayload(
            patrol=PatrolNode.from_model(await recording.pause_patrol(_chief(info), patrol_id, input.at))
        )

    @payload_mutation("Resume a paused patrol (retry-safe).")
    async def patrol_resume(self, info: Info, input: PatrolTimeInput) -> PatrolPayload:
        patrol_id = decode_id(input.patrol_id, "Patrol", "input", "patrolId")
        return PatrolPayload(
            patrol=PatrolNode.from_model(await recording.resume_patrol(_chief(info), patrol_id, input.at))
        )

    @payload_mutation("Finish and compute the metrics; finishing again returns the same patrol.")
    async def patrol_finish(self, info: Info, input: PatrolFinishInput) -> PatrolPayload:
        patrol = await recording.finish_patrol(
            _chief(info),
            decode_id(input.patrol_id, "Patrol", "input", "patrolId"),
            input.finished_at,
            sent_at=input.sent_at,
        )
        return PatrolPayload(patrol=PatrolNode.from_model(patrol))

    @payload_mutation("Record an observation on one of your patrols (retry-safe by clientId).")
    async def patrol_observation_record(
        self, info: Info, input: PatrolObservationRecordInput
    ) -> ObservationPayload:
        observation = await recording.record_observation(
            _chief(info),
            decode_id(input.patrol_id, "Patrol", "input", "patrolId"),
            client_id=input.client_id,
            category=input.category,
            note=input.note,
            lat=input.location.latitude,
            lon=input.location.longitude,
            crs=input.location.crs,
            observed_at=input.observed_at,
            photo_ids=[
                decode_id(p, "Photo", "input", "photoIds", str(i)) for i, p in enumerate(input.photo_ids)
            ],
        )
        return ObservationPayload(observation=ObservationNode.from_model(observation))

    @payload_mutation("Hand an observation off as a case, routed like a resident's report (retry-safe).")
    async def patrol_observation_escalate(
        self, info: Info, input: PatrolObservationEscalateInput
    ) -> ObservationPayload:
        assert info.context.services is not None
        observation = await handoff.escalate(
            _chief(info),
            decode_id(input.observation_id, "Observation", "input", "observationId"),
            await info.context.services.routing.current(),
        )
        return ObservationPayload(observation=ObservationNode.from_model(observation))

    @payload_mutation(
        "Record that an observation was handled on the spot (现场处理), with photos taken after: a problem "
        "found and solved, no case. Only the patrol's recorder; not once handed off. Retry-safe."
    )
    async def patrol_observation_handle_on_spot(
        self, info: Info, input: PatrolObservationHandleOnSpotInput
    ) -> ObservationPayload:
        observation = await handoff.handle_on_spot(
            _chief(info),
            decode_id(input.observation_id, "Observation", "input", "observationId"),
            after_photo_ids=[
                decode_id(p, "Photo", "input", "afterPhotoIds", str(i))
                for i, p in enumerate(input.after_photo_ids)
            ],
            note=input.note,
        )
        return ObservationPayload(observation=ObservationNode.from_model(observation))

    @payload_mutation(
        "Enroll a social supervisor (民间河长, VOLUNTEER account) to patrol an area from a date. Admins and "
        "the chief office; retry-safe."
    )
    async def volunteer_enrollment_create(
        self, info: Info, input: VolunteerEnrollmentCreateInput
    ) -> VolunteerEnrollmentPayload:
        row = await admin.enroll_volunteer(
            await _office(info),
            volunteer_id=decode_id(input.volunteer_id, "User", "input", "volunteerId"),
            area_id=decode_id(input.area_id, "PatrolArea", "input", "areaId"),
            valid_from=input.valid_from,
            valid_to=input.valid_to,
        )
        return VolunteerEnrollmentPayload(enrollment=VolunteerEnrollmentNode.from_model(row))

    @payload_mutation("End a social supervisor's enrollment on a date; it stays as history.")
    async def volunteer_enrollment_end(
        self, info: Info, input: VolunteerEnrollmentEndInput
    ) -> VolunteerEnrollmentPayload:
        await _office(info)
        row = await admin.end_enrollment(
            decode_id(input.enrollment_id, "VolunteerEnrollment", "input", "enrollmentId"), input.valid_to
        )
        return VolunteerEnrollmentPayload(enrollment=VolunteerEnrollmentNode.from_model(row))

    @payload_mutation("Create a finished patrol from another app's GPX track (every point needs a time).")
    async def patrol_gpx_import(self, info: Info, input: PatrolGpxImportInput) -> PatrolGpxImportPayload:
        user = _chief(info)
        data = await input.read()
        result = await recording.import_gpx(
            user,
            client_id=input.client_id,
            area_id=decode_id(input.area_id, "PatrolArea", "input", "areaId"),
            mode=input.mode,
            data=data,
        )
        return PatrolGpxImportPayload(
            patrol=PatrolNode.from_model(result.patrol),
            imported=result.imported,
            duplicates_skipped=result.duplicates,
        )

    @payload_mutation("Import patrol areas from GeoJSON; lengths and areas are computed. Admins only.")
    async def patrol_area_import(self, info: Info, input: PatrolAreaImportInput) -> PatrolAreaImportPayload:
        info.context.require_role(Role.ADMIN)
        rows = await areas.import_feature_collection(input.geojson)
        return PatrolAreaImportPayload(areas=[PatrolAreaNode.from_model(r) for r in rows])

    @payload_mutation("Make a chief responsible for an area from a date. Admins only.")
    async def chief_assignment_create(
        self, info: Info, input: ChiefAssignmentCreateInput
    ) -> ChiefAssignmentPayload:
        info.context.require_role(Role.ADMIN)
        row = await admin.assign_chief(
            chief_id=decode_id(input.chief_id, "User", "input", "chiefId"),
            area_id=decode_id(input.area_id, "PatrolArea", "input", "areaId"),
            level=input.level,
            kind=input.kind,
            valid_from=input.valid_from,
            valid_to=input.valid_to,
        )
        return ChiefAssignmentPayload(assignment=ChiefAssignmentNode.from_model(row))

    @payload_mutation("End an assignment on a date; it stays as history. Admins only.")
    async def chief_assignment_end(
        self, info: Info, input: ChiefAssignmentEndInput
    ) -> ChiefAssignmentPayload:
        info.context.require_role(Role.ADMIN)
        row = await admin.end_assignment(
            decode_id(input.assignment_id, "ChiefAssignment", "input", "assignmentId"), input.valid_to
        )
        return ChiefAssignmentPayload(assignment=ChiefAssignmentNode.from_model(row))

    @payload_mutation("Let an assistant patrol for you for a period; their patrols count for you.")
    async def patrol_delegation_create(
        self, info: Info, input: PatrolDelegationCreateInput
    ) -> PatrolDelegationPayload:
        principal = info.context.require_principal()
        access.refuse_volunteer(principal, "delegate patrolling")
        chief = info.context.require_role(Role.CHIEF).user
        row = await admin.delegate(
            chief,
            assistant_id=decode_id(input.assistant_id, "User", "input", "assistantId"),
            valid_from=input.valid_from,
            valid_to=input.valid_to,
        )
        return PatrolDelegationPayload(delegation=PatrolDelegation.from_model(row))

    @payload_mutation(
        "End a delegation early (the chief who gave it, or the river chief office). Ending it again on the "
        "same day answers the same."
    )
    async def patrol_delegation_end(
        self, info: Info, input: PatrolDelegationEndInput
    ) -> PatrolDelegationPayload:
        principal = info.context.require_principal()
        viewer = await access.viewer_of(principal)
        row = await admin.end_delegation(
            viewer,
            decode_id(input.delegation_id, "PatrolDelegation", "input", "delegationId"),
            input.valid_to,
            recording.local_date(clock.now()),
        )
        return PatrolDelegationPayload(delegation=PatrolDelegation.from_model(row))
