"""Management reports rendered from the analytics database (HTML and PDF)."""
