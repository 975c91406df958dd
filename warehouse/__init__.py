"""Customer-register warehouse: command line and shared plumbing."""
