"""Orchestration only: the five stages in order (:mod:`.flow`), the notebook runner
(:mod:`.nbrun`), the DATA runner (:mod:`.run`) and the pre-run checks (:mod:`.preflight`).
Each stage's logic is in its subpackage's ``stage`` module."""
