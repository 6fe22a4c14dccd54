"""Notifications to people: the in-app inbox, preferences, templates, Web Push and SMS."""
