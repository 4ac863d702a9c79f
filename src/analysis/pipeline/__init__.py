"""Orchestration only: the five stages in order (:mod:`.flow`), the notebook runner
(:mod:`.nbrun`), the DATA runner (:mod:`.run`), the pre-run checks (:mod:`.preflight`) and
each stage's DVC deps computed from its imports (:mod:`.deps`).  Each stage's logic is in
its subpackage's ``stage`` module."""
