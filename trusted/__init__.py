"""Trusted documents (persisted operations): the GraphQL documents the apps registered by their hash.

An app's build registers its operations (sha256 of the document text -> the document); the app then
sends only the hash. A deployment may run registered operations only (TRUSTED_DOCUMENTS_ONLY), so
nothing but what the released apps ask can be executed.
"""
