"""GraphQL for users, departments, sign-in and tokens."""
