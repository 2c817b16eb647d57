"""Shared pytest setup: the offline engine's fixture and fast hypothesis defaults."""

from hypothesis import HealthCheck, settings

pytest_plugins = ["components.testing.fixtures"]

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")
