"""Repository-wide pytest settings (plugins' own fixtures come from otpme_auth.testing).

CI runs property-based tests derandomized: the same examples every run, so a red CI
is about the change, not about the draw.  Developers' runs stay random and keep
exploring; what they find becomes a fixed test.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")
