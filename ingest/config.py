"""Source-entity configuration: one YAML file per entity under `sources/`, merged over `defaults.yml`.

The shipped files are the export contract (`shared/contracts/exports.md`); another company's exports are
mapped by pointing `--config` at its own folder of the same shape. `schema_drift` says per entity what a
header that differs from the configured columns does (load with a warning, or refuse the file);
`inbox.yml` (optional) lists the files in the inbox that are not exports, so that every other file no entity
claims is reported as unrecognised.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import yaml

from core.erasure import RawTable
from core.settings import DEFAULT_INGEST_CONFIG

DEFAULT_CONFIG_DIR = DEFAULT_INGEST_CONFIG
MODES = ("snapshot", "delta")
FORMATS = ("csv", "jsonl")
DRIFT_ACTIONS = ("warn", "refuse")
INBOX_FILE = "inbox.yml"


class ConfigError(ValueError):
    """The configuration itself is wrong: named file and key."""


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quote: str
    escape: str
    decimal_separator: str
    date_format: str
    timestamp_format: str


@dataclass(frozen=True)
class SchemaDrift:
    """What a CSV header that differs from the configured columns does: `warn` (load, and say so) or `refuse`.

    Required columns missing from the header always refuse the file; these cover the others.
    """

    missing_columns: str = "warn"  # a configured column absent from the header: loaded as NULL
    unexpected_columns: str = "warn"  # a header column no configured column reads: not loaded


@dataclass(frozen=True)
class Inbox:
    """The inbox as a whole: files that are not exports (shell-style patterns relative to the inbox)."""

    ignore: tuple[str, ...] = ()


def decimal_spec(kind: str) -> tuple[int, int] | None:
    """Precision and scale of a DECIMAL / NUMERIC type (DuckDB's defaults when not given), else None."""
    match = re.fullmatch(r"\s*(?:DECIMAL|NUMERIC)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*", kind.upper())
    if not match:
        return None
    if match.group(1) is None:
        return 18, 3
    return int(match.group(1)), int(match.group(2) or 0)


@dataclass(frozen=True)
class Entity:
    system: str
    entity: str
    pattern: str
    format: str
    encoding: str
    mode: str
    key: tuple[str, ...]
    required: tuple[str, ...]
    columns: dict[str, str]  # warehouse column name -> DuckDB type, in the contract's order
    source_names: dict[str, str]  # warehouse column name -> header name in the export file
    dialect: Dialect
    export_date_pattern: str
    export_date_format: str
    schema_drift: SchemaDrift = SchemaDrift()

    @property
    def name(self) -> str:
        return f"{self.system}/{self.entity}"

    @property
    def raw_table(self) -> str:
        return f"raw_{self.system}.{self.entity}"

    @property
    def raw(self) -> RawTable:
        return RawTable(self.system, self.entity, self.raw_table, self.key, self.columns,
                        versioned=self.mode == "snapshot")

    def export_date(self, path: Path) -> date:
        match = re.search(self.export_date_pattern, path.name)
        if not match:
            raise ConfigError(f"{path.name}: no export date matching {self.export_date_pattern!r}")
        return datetime.strptime(match.group(1), self.export_date_format).date()


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and key in base else value
    return merged


def _columns(spec: dict) -> tuple[dict[str, str], dict[str, str]]:
    """`name: type`, or `name: {type: ..., source: header name}` where the export calls it differently."""
    types, sources = {}, {}
    for name, kind in spec.items():
        detail = kind if isinstance(kind, dict) else {"type": kind}
        types[name] = str(detail["type"]).upper()
        sources[name] = detail.get("source", name)
    return types, sources


def load_entities(config_dir: Path = DEFAULT_CONFIG_DIR) -> list[Entity]:
    """Every entity configured under `config_dir`, in a stable order."""
    defaults = yaml.safe_load((config_dir / "defaults.yml").read_text()) or {}
    entities = []
    for path in sorted(config_dir.glob("*/*.yml")):
        spec = _merge(defaults, yaml.safe_load(path.read_text()) or {})
        try:
            columns, source_names = _columns(spec["columns"])
            entity = Entity(
                system=spec["system"],
                entity=spec["entity"],
                pattern=spec["pattern"],
                format=spec["format"],
                encoding=spec["encoding"],
                mode=spec["mode"],
                key=tuple(spec["key"]),
                required=tuple(spec.get("required", spec["key"])),
                columns=columns,
                source_names=source_names,
                dialect=Dialect(**spec["dialect"]),
                export_date_pattern=spec["export_date_pattern"],
                export_date_format=spec["export_date_format"],
                schema_drift=SchemaDrift(**spec.get("schema_drift", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: missing or unknown key {exc}") from exc
        if entity.mode not in MODES or entity.format not in FORMATS:
            raise ConfigError(f"{path}: mode must be one of {MODES}, format one of {FORMATS}")
        try:
            codecs.lookup(entity.encoding)
        except LookupError as exc:
            raise ConfigError(f"{path}: unknown encoding {entity.encoding!r}") from exc
        unknown = (set(entity.key) | set(entity.required)) - set(entity.columns)
        if unknown:
            raise ConfigError(f"{path}: key/required name columns that are not configured: {unknown}")
        for setting, action in vars(entity.schema_drift).items():
            if action not in DRIFT_ACTIONS:
                raise ConfigError(f"{path}: schema_drift.{setting} must be one of {DRIFT_ACTIONS}, not {action!r}")
        for name, kind in entity.columns.items():
            # The reader reads decimals one digit wider at least, to see (and reject) digits the type would round.
            if (decimal := decimal_spec(kind)) and not (0 <= decimal[1] <= decimal[0] <= 37):
                raise ConfigError(f"{path}: column {name}: {kind} must have a scale <= precision <= 37")
        entities.append(entity)
    if not entities:
        raise ConfigError(f"{config_dir}: no entity files (*/*.yml)")
    load_inbox(config_dir)  # checked with the entities: a wrong inbox.yml stops a run before it reads a file
    return entities


def load_inbox(config_dir: Path = DEFAULT_CONFIG_DIR) -> Inbox:
    """`inbox.yml` of `config_dir`: `ignore`, a list of patterns of files that are not exports (optional)."""
    path = config_dir / INBOX_FILE
    if not path.exists():
        return Inbox()
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict) or set(spec) - {"ignore"}:
        raise ConfigError(f"{path}: only the key 'ignore' is known")
    ignore = spec.get("ignore") or []
    if not isinstance(ignore, list) or not all(isinstance(item, str) and item.strip() for item in ignore):
        raise ConfigError(f"{path}: ignore must be a list of file patterns relative to the inbox")
    return Inbox(tuple(ignore))
