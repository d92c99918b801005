"""Settings shared by every test session (unit, peer, system).

Hypothesis runs derandomized by default: the fuzz tests then try the same
examples in every run, so a red CI is a regression and not a new example
drawn that day. ``HYPOTHESIS_PROFILE=explore`` draws new examples (run it
locally to look for bugs; turn any failure it finds into a regression test).
"""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
