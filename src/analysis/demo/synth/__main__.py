"""``python -m analysis.demo.synth``: generate the demo region (see :mod:`.cli`)."""

from __future__ import annotations

from analysis.demo.synth.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
