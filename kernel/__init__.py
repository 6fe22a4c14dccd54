"""The small shared kernel: geo helpers, ids, clock and the domain error type.

Everything here is free of GraphQL, HTTP and domain packages so that every other package may use it.
"""
