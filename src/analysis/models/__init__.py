"""Stage 03: the link between family social status and results; :mod:`.stage` runs the
stage on the processed files."""
