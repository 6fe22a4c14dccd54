"""Reaching a reporter through the platform: the case's staff write, the reporter's inbox receives.

Only a reporter who agreed to be contacted (`contactConsent`) can be reached, anonymous or not; the
staff member never learns an account or a number, and the reporter answers (or not) by the ordinary
means of the case. Who wrote is not shown to the reporter either: the message comes from the case.
"""

from __future__ import annotations

from identity.service import Principal
from kernel import clock
from kernel.errors import DomainError, ErrorCode, invalid, not_found
from notifications.models import Language, Notification
from notifications.service import preferences_of
from reports import access
from reports.models import Case, Report

KIND = "case_contact"
MAX_MESSAGE = 2000
TITLES = {
    Language.ZH_CN: "关于您的报告 {reference} 的消息",
    Language.EN: "A message about your report {reference}",
}


async def contact_reporter(principal: Principal, report_id: int, message: str) -> Notification:
    """Put `message` in the inbox of the report's reporter, for the staff of the report's case.

    A report the caller may not handle answers like a missing one (NOT_FOUND); a reporter who did not
    consent is FORBIDDEN; an empty or too long message is INVALID.
    """
    message = message.strip()
    if not message:
        raise invalid("Write the message.", "input", "message")
    if len(message) > MAX_MESSAGE:
        raise invalid(f"At most {MAX_MESSAGE} characters.", "input", "message")
    report = await Report.get_or_none(id=report_id)
    case = None if report is None else await Case.get_or_none(id=report.case_id)
    if report is None or case is None or not access.is_case_staff(principal.user, case):
        raise not_found("report", "input", "reportId")
    if not report.contact_consent:
        raise DomainError(
            ErrorCode.FORBIDDEN, "The reporter did not agree to be contacted.", ["input", "reportId"]
        )
    language = (await preferences_of(report.reporter_id)).language
    return await Notification.create(
        user_id=report.reporter_id,
        kind=KIND,
        subject="case",
        subject_id=case.id,
        title=TITLES[Language(language)].format(reference=case.reference),
        body=message,
        data={"reference": case.reference},
        created_at=clock.now(),
    )
