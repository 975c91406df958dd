"""Retention: the versioned policy (`policy.yml`, `policy.py`) and the scheduled audit (`audit.py`)."""

from retention.policy import Policy, PolicyError, load_policy

__all__ = ["Policy", "PolicyError", "load_policy"]
