"""Data files of the reports domain (categories, routing tables, SLA policies, calendars).

A package only so that setuptools ships the JSON next to the code.
"""
