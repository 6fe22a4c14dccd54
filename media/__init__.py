"""Photo intake (validate, decode, read EXIF evidence, strip, derive) and storage.

Knows nothing of reports or patrols: they hold photo ids and storage keys.
"""
