"""Stage 02: the social well-being index and clusters of schools by context;
:mod:`.stage` runs the stage on the processed files."""
