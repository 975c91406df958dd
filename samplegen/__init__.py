"""Sample-export generator: a deterministic, realistic history of Local Loop Oy's source exports.

A development tool for demos, tests and benchmarks, not part of the warehouse.
"""

from .generate import generate_exports

__all__ = ["generate_exports"]
