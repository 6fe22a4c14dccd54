"""Exports for analysts and the river chief office: cases, statistics tables and patrol compliance as
CSV, XLSX or GeoJSON, written in batches by a background job the owner can follow, cancel and download."""
