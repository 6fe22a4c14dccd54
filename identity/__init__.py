"""Who is calling: users and roles, anonymous devices, passwords, tokens and phone verification.

Plain async functions over the ORM; no GraphQL and no HTTP here.
"""
