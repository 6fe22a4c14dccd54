"""Signboards (公示牌): the public record of who is responsible for a river segment, lake or forest area.

One per patrol area, built from the chief assignments in force on the city's local date: the area,
its chiefs by level with their positions, what they answer for, the office's phone and where to
complain (a link, also the QR code's payload). Names appear as the city publishes them
(`SIGNBOARD_NAMES`): the full display name, the surname with the position only, or the position only.
No phone number or account of a chief is ever on it.

Reads come from an in-process cache keyed on the area and the days its assignments stay unchanged:
an entry serves until the day an assignment starts or ends (the signboard changes that day), until an
assignment of the area is created or ended in this process (`forget`), and for at most
`SIGNBOARD_CACHE_SECONDS` (other processes' changes reach it within that time).
"""

from __future__ import annotations

import enum
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from kernel import city, clock
from patrols.access import LEVEL_RANK
from patrols.models import ChiefAssignment, PatrolArea
from patrols.rules import AreaKind, ChiefKind, ChiefLevel

LEVEL_ZH = {
    ChiefLevel.PROVINCE: "省级",
    ChiefLevel.CITY: "市级",
    ChiefLevel.COUNTY: "县级",
    ChiefLevel.TOWNSHIP: "乡级",
    ChiefLevel.VILLAGE: "村级",
}
KIND_ZH = {
    ChiefKind.RIVER: "河长",
    ChiefKind.LAKE: "湖长",
    ChiefKind.FOREST: "林长",
    ChiefKind.PATROLLER: "巡查员",
}
# What a chief answers for, by the kind of area: the duties the chief systems' opinions give each chief.
DUTIES = {
    AreaKind.RIVER_SEGMENT: (
        "组织开展河道巡查，发现问题及时处理或上报",
        "牵头治理水污染、整治河道乱占乱采乱堆乱建",
        "保护水资源、水域岸线和水生态",
        "督促有关部门履行职责，接受群众监督和投诉",
    ),
    AreaKind.LAKE: (
        "组织开展湖泊巡查，发现问题及时处理或上报",
        "牵头治理水污染、清理非法围湖、养殖和采砂",
        "保护湖泊水域空间和水生态",
        "督促有关部门履行职责，接受群众监督和投诉",
    ),
    AreaKind.FOREST_AREA: (
        "组织开展林区巡护，发现问题及时处理或上报",
        "牵头森林防火、林业有害生物防治和资源保护",
        "制止毁林、乱占林地和非法采伐",
        "督促有关部门履行职责，接受群众监督和投诉",
    ),
}


class NameDisplay(enum.StrEnum):
    FULL = "FULL"  # the account's display name
    SURNAME = "SURNAME"  # the surname with the position, e.g. 黄 村级河长
    POSITION = "POSITION"  # the position only


@dataclass(frozen=True, slots=True)
class SignboardConfig:
    names: NameDisplay = NameDisplay.SURNAME
    office_phone: str | None = None  # the chief office's public number (河长办), never a person's
    complaint_url: str | None = None  # "{code}" is replaced by the area's code
    cache_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class SignboardChief:
    level: ChiefLevel
    kind: ChiefKind
    position: str
    name: str | None
    since: date


@dataclass(frozen=True, slots=True)
class Signboard:
    code: str
    name: str
    area_kind: AreaKind
    region: str
    chiefs: tuple[SignboardChief, ...]
    responsibilities: tuple[str, ...]
    office_phone: str | None
    complaint_url: str | None
    valid_from: date | None  # the first day this content holds (None: since the first assignment)
    valid_until: date | None  # the last day it holds, inclusive (None: no change is planned)
    body: bytes = field(repr=False)  # the JSON the HTTP route serves
    etag: str = ""


def position_of(level: ChiefLevel, kind: ChiefKind) -> str:
    return f"{LEVEL_ZH[level]}{KIND_ZH[kind]}"


def published_name(display_name: str, position: str, names: NameDisplay) -> str | None:
    """The name as the city publishes it. A surname is the first character of the last Chinese word of
    the display name (黄勇 -> 黄), else the first letter of its last word."""
    if names is NameDisplay.POSITION or not display_name.strip():
        return None
    if names is NameDisplay.FULL:
        return display_name.strip()
    words = display_name.split()
    chinese = [w for w in words if any("\u4e00" <= ch <= "\u9fff" for ch in w) and w != position]
    surname = chinese[-1][0] if chinese else words[-1][0]
    return f"{surname} {position}"


_config = SignboardConfig()
_cache: dict[str, tuple[Signboard, float]] = {}


def configure(config: SignboardConfig) -> None:
    global _config
    _config = config
    _cache.clear()


def forget(area_code: str | None = None) -> None:
    """Drop cached signboards (one area's, or all): an assignment changed."""
    if area_code is None:
        _cache.clear()
    else:
        _cache.pop(area_code, None)


async def _build(area: PatrolArea, today: date) -> Signboard:
    rows = await ChiefAssignment.filter(area_id=area.id).values_list(
        "level", "kind", "valid_from", "valid_to", "chief__display_name", "chief__is_active"
    )
    changes: set[date] = set()
    chiefs = []
    for level, kind, valid_from, valid_to, display_name, active in rows:
        changes.add(valid_from)
        if valid_to is not None:
            changes.add(valid_to + timedelta(days=1))
        if valid_from <= today and (valid_to is None or today <= valid_to) and active:
            position = position_of(ChiefLevel(level), ChiefKind(kind))
            name = published_name(display_name or "", position, _config.names)
            chiefs.append(SignboardChief(ChiefLevel(level), ChiefKind(kind), position, name, valid_from))
    chiefs.sort(key=lambda c: (LEVEL_RANK[c.level], c.position, c.name or "", c.since))
    before = [d for d in changes if d <= today]
    after = [d for d in changes if d > today]
    complaint = _config.complaint_url.replace("{code}", area.code) if _config.complaint_url else None
    board = {
        "code": area.code,
        "name": area.name,
        "kind": area.kind.value,
        "region": area.admin_region,
        "chiefs": [
            {
                "level": c.level.value,
                "kind": c.kind.value,
                "position": c.position,
                "name": c.name,
                "since": c.since.isoformat(),
            }  # fmt: skip
            for c in chiefs
        ],
        "responsibilities": list(DUTIES[area.kind]),
        "officePhone": _config.office_phone,
        "complaintUrl": complaint,
        "qrPayload": complaint,
        "validFrom": max(before).isoformat() if before else None,
        "validUntil": (min(after) - timedelta(days=1)).isoformat() if after else None,
    }
    body = json.dumps(board, ensure_ascii=False, separators=(",", ":")).encode()
    return Signboard(
        code=area.code,
        name=area.name,
        area_kind=area.kind,
        region=area.admin_region,
        chiefs=tuple(chiefs),
        responsibilities=DUTIES[area.kind],
        office_phone=_config.office_phone,
        complaint_url=complaint,
        valid_from=max(before) if before else None,
        valid_until=min(after) - timedelta(days=1) if after else None,
        body=body,
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    )


def _fresh(board: Signboard, built: float, today: date) -> bool:
    if time.monotonic() - built > _config.cache_seconds:
        return False
    starts_ok = board.valid_from is None or board.valid_from <= today
    return starts_ok and (board.valid_until is None or today <= board.valid_until)


async def signboard(area_code: str) -> Signboard | None:
    """The area's signboard on today's local date, or None for an unknown area. Public."""
    today = city.current().local_date(clock.now())
    cached = _cache.get(area_code)
    if cached is not None and _fresh(cached[0], cached[1], today):
        return cached[0]
    area = await PatrolArea.get_or_none(code=area_code)
    if area is None:
        return None
    board = await _build(area, today)
    _cache[area_code] = (board, time.monotonic())
    return board


async def forget_assignment(assignment: ChiefAssignment) -> None:
    area = await PatrolArea.get_or_none(id=assignment.area_id)
    forget(area.code if area is not None else None)
