"""The stages as functions, the notebook runner, the DATA runner and the pre-run checks."""
