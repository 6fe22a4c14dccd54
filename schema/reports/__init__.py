"""GraphQL for residents' reports, the cases they land in, the public map and the routing data admins edit."""
# Until schema/patrols imports it from schema.reports.inputs (the patrols split): removed then.
from schema.reports.inputs import LocationInput  # noqa: F401
