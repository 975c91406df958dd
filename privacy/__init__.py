"""Privacy by design: the data map, subject access, rectification, disclosures and the register description."""
