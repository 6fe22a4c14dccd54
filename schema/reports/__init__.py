"""GraphQL for residents' reports, the cases they land in, the public map and the routing data admins edit."""
