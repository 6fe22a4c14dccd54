"""Open311 GeoReport v2: the civic-reporting interchange standard, over the same catalog and cases."""
