"""Data for demos and tests: the synthetic region with planted truth, real public data."""
