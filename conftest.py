"""Repository-wide pytest settings (plugins' own fixtures come from otpme_auth.testing).

CI runs property-based tests derandomized: the same examples every run, so a red CI
is about the change, not about the draw.  Developers' runs stay random and keep
exploring; what they find becomes a fixed test.
"""

import os

from hypothesis import HealthCheck, settings

# Generation speed is not what these tests are about, and a loaded 2-core machine
# (CI, or a developer running other work) makes the too_slow health check flaky.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")
