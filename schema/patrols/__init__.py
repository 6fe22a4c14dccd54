"""GraphQL for patrols: areas, assignments, offline patrol recording, observations and compliance."""
