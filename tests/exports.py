"""Hand-made export files in the contract's layout for tests; headers come from the ingest configuration."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ingest.config import load_entities

ENTITIES = {entity.entity: entity for entity in load_entities()}


def header(entity: str) -> str:
    """The header row of an entity's export, e.g. header("services")."""
    spec = ENTITIES[entity]
    return spec.dialect.delimiter.join(spec.source_names.values())


def fi(day: date | None) -> str:
    """A date as the exports write it (`5.1.2024`); empty for none."""
    return "" if day is None else f"{day.day}.{day.month}.{day.year}"


def write(path: Path, content: str | list[str], encoding: str = "utf-8") -> Path:
    """Write an export file: `content` is the whole text, or its lines."""
    text = content if isinstance(content, str) else "\n".join(content) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def invoice_line(n: int, description: str = "Kuitu 100 M", price: str = "29,90") -> str:
    """Invoice line n of invoice n // 2, in the contract's layout."""
    return (f"I{n // 2:08d};{n % 2 + 1};S{n:08d};{description};1.1.2024;31.1.2024;1;{price};29,90;24;"
            "1.2.2024 8:00:00")
