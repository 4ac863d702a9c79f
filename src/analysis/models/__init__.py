"""Stage 03: the link between family social status and results."""
