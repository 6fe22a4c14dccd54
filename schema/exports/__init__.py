"""Exports of cases, statistics tables and patrol compliance: start, follow, cancel, download."""
