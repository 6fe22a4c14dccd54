"""The one city configuration (kernel.city) and what the city publishes on its signboards, built from
the settings once at start."""

from __future__ import annotations

from kernel import city
from kernel.city import DEFAULT_CALENDAR, City, load_city
from patrols import signboard
from patrols.signboard import NameDisplay, SignboardConfig
from server.settings import Settings


def build_city(settings: Settings) -> City:
    """The city from its calendar file and locale; a malformed file stops the server before it serves."""
    return load_city(settings.city_calendar_path or DEFAULT_CALENDAR, settings.city_locale)


def install_city(settings: Settings) -> City:
    built = build_city(settings)
    city.configure(built)
    signboard.configure(
        SignboardConfig(
            names=NameDisplay(settings.signboard_names),
            office_phone=settings.signboard_office_phone,
            complaint_url=settings.signboard_complaint_url,
            cache_seconds=settings.signboard_cache_seconds,
        )
    )
    return built


async def refresh_city() -> int:
    """Lay the admins' stored years over the shipped calendar again; returns how many years it holds."""
    return len((await city.refresh()).years())
