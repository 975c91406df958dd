"""Sample-export generator: a deterministic, realistic history of Local Loop Oy's source exports."""

from .generate import generate_exports

__all__ = ["generate_exports"]
