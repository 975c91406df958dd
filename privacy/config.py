"""The privacy configuration: data map, disclosure rules and register description, loaded and validated.

Three YAML files beside this module (data_map.yml, disclosures.yml, register.yml) plus retention/policy.yml
describe the register once; subject access, rectification, the disclosure register and the privacy notice all
read them from here. Loading validates every cross-reference (categories against fideslang's taxonomy, data
uses, sources, recipients, fields), so a typo fails at once with the file and the entry named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from fideslang.default_taxonomy import DEFAULT_TAXONOMY

from core.erasure import VERSION_SUFFIX, RawTable, TableErasure, clean_id, version_record_id

CONFIG_DIR = Path(__file__).resolve().parent
NOT_PERSONAL = "system.operations"  # the one category of a column that says nothing about a person


class PrivacyConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Dataset:
    table: str  # schema.model in the vault
    title: dict[str, str]  # language -> title
    columns: dict[str, str]  # column -> fideslang data category
    subject_column: str | None  # the column holding the customer id, or
    via: tuple[str, str] | None  # (dataset holding it, join key)
    source: str
    purposes: list[str]
    rectifiable: list[str]
    raw_columns: dict[str, str] = field(default_factory=dict)  # column -> the raw column it is made from
    on_erasure: str = "delete"  # or anonymise: what erasing one of its records does
    identifying: list[str] = field(default_factory=list)  # columns that identify whatever their category

    @property
    def personal_columns(self) -> list[str]:
        return [c for c, category in self.columns.items() if category != NOT_PERSONAL]


@dataclass(frozen=True)
class DataMap:
    version: str
    datasets: dict[str, Dataset]  # table -> dataset
    lineage_columns: list[str]
    not_personal: list[str]
    identifying: list[str] = field(default_factory=list)  # data categories that identify a person
    version_views: dict[str, str] = field(default_factory=dict)  # staging view -> the dataset whose versions it lists

    def category(self, qualified_column: str) -> str:
        table, column = qualified_column.rsplit(".", 1)
        return self.datasets[table].columns[column]

    def is_identifying(self, category: str) -> bool:
        """A column identifies a person when its category is one of the `identifying` ones or a narrower one."""
        return any(category == c or category.startswith(c + ".") for c in self.identifying)

    def identifying_columns(self, dataset: Dataset) -> list[str]:
        """By category, and the columns the dataset names itself (values of any category: corrections)."""
        return [c for c, category in dataset.columns.items()
                if self.is_identifying(category) or c in dataset.identifying]


@dataclass(frozen=True)
class Rule:
    id: str
    title: dict[str, str]
    description: dict[str, str]
    purpose: str
    notice_section: str
    allowed_fields: list[str]  # dataset.column


@dataclass(frozen=True)
class Recipient:
    name: str
    rule: str
    country: str
    safeguard: str | None = None


@dataclass(frozen=True)
class Flow:
    id: str
    rule: str
    fields: list[str]  # dataset.column
    dataset: str | None = None  # recorded disclosures: one row each in this staging model ...
    key: str | None = None
    recipient: str | None = None  # ... with these columns
    date: str | None = None
    country: str | None = None
    recipient_name: str | None = None  # standing disclosures (subcontractors)
    since: date | None = None
    customers_where: str | None = None


@dataclass(frozen=True)
class Disclosures:
    version: str
    eea_countries: list[str]
    rules: dict[str, Rule]
    recipients: dict[str, Recipient]
    flows: list[Flow]


@dataclass(frozen=True)
class Register:
    raw: dict[str, Any] = field(repr=False)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.raw[name]
        except KeyError:
            raise AttributeError(name) from None


def _read(name: str, directory: Path) -> dict[str, Any]:
    path = directory / name
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _fail(file: str, where: str, message: str) -> None:
    raise PrivacyConfigError(f"{file}: {where}: {message}")


@cache
def _taxonomy() -> tuple[frozenset[str], frozenset[str]]:
    return (frozenset(c.fides_key for c in DEFAULT_TAXONOMY.data_category),
            frozenset(u.fides_key for u in DEFAULT_TAXONOMY.data_use))


def load_data_map(directory: Path = CONFIG_DIR) -> DataMap:
    raw = _read("data_map.yml", directory)
    categories, uses = _taxonomy()
    register = load_register(directory)
    datasets = {}
    for entry in raw["datasets"]:
        table = entry["table"]
        # `column: category`, or `column: {category: ..., raw: name}` when the raw column is named otherwise
        columns = {c: v["category"] if isinstance(v, dict) else v for c, v in entry["columns"].items()}
        raw_columns = {c: v["raw"] for c, v in entry["columns"].items() if isinstance(v, dict) and "raw" in v}
        if entry.get("on_erasure", "delete") not in ("delete", "anonymise"):
            _fail("data_map.yml", table, "on_erasure is delete or anonymise")
        for column, category in columns.items():
            if category not in categories:
                _fail("data_map.yml", f"{table}.{column}", f"{category!r} is not a fideslang data category")
        for purpose in entry["purposes"]:
            if purpose not in uses or purpose not in register.purposes:
                _fail("data_map.yml", table, f"purpose {purpose!r} must be a fideslang data use named in "
                      "register.yml `purposes`")
        if entry["source"] not in register.sources:
            _fail("data_map.yml", table, f"source {entry['source']!r} is not in register.yml `sources`")
        subject = entry["subject"]
        via = (subject["via"], subject["key"]) if isinstance(subject, dict) else None
        for column in entry.get("rectifiable", []):
            if column not in columns:
                _fail("data_map.yml", table, f"rectifiable column {column!r} is not in its columns")
        datasets[table] = Dataset(table, entry["title"], columns, None if via else subject, via, entry["source"],
                                  entry["purposes"], entry.get("rectifiable", []), raw_columns,
                                  entry.get("on_erasure", "delete"), entry.get("identifying", []))
    for dataset in datasets.values():
        if dataset.via and (dataset.via[0] not in datasets or datasets[dataset.via[0]].subject_column is None):
            _fail("data_map.yml", dataset.table, f"`via` {dataset.via[0]!r} must be a dataset with a subject column")
    for category in raw.get("identifying", []):
        if category not in categories:
            _fail("data_map.yml", "identifying", f"{category!r} is not a fideslang data category")
    version_views = raw.get("version_views", {})
    for view, table in version_views.items():
        if table not in datasets:
            _fail("data_map.yml", "version_views", f"{view!r} lists the versions of {table!r}, which is not a dataset")
    return DataMap(raw["version"], datasets, raw["lineage_columns"], raw["not_personal"], raw.get("identifying", []),
                   version_views)


def record_type(table: str) -> str:
    """The record type of a dataset's rows, as the retention models name it: `stg_<source>__<entity>s` -> entity."""
    entity = table.rsplit(".", 1)[-1].split("__", 1)[-1]
    return entity[:-1] if entity.endswith("s") else entity


def erasure_tables(data_map: DataMap, raw_tables: Iterable[RawTable]) -> list[TableErasure]:
    """What erasing a record means in each table, derived from the data map and the ingest's raw tables.

    A raw table's own records (key: its configured key, joined with '/') are deleted, or anonymised where the
    data map says `on_erasure: anonymise` (records the accounting vouchers refer to). Its identifying columns
    (the data map's `identifying` categories, mapped to raw columns) are also nulled when the customer its
    rows belong to is erased. A vault table of the data map outside staging (the rectifications) follows its
    customer and the record its `record_id` names. Fails, naming the column, when an identifying column
    cannot be placed in raw: no identifying data may escape an erasure.

    A versioned raw table (a snapshot entity's) with identifying columns gets a second spec: its closed versions
    are records of their own, `<type>_version` (`customer_version`, id `<customer_id>@<valid_from>`), on the
    retention rule of superseded values, deleted as a whole (the key's current version stays).
    """
    by_staging = {r.staging_model: r for r in raw_tables}
    specs = []
    for dataset in data_map.datasets.values():
        identifying = data_map.identifying_columns(dataset)
        raw = by_staging.get(dataset.table)
        if raw is None:
            if dataset.table.startswith("staging.") or dataset.table in data_map.not_personal:
                continue  # derived in staging from another raw table (ticket messages), or not about a person
            references = {"customer": clean_id(dataset.subject_column)} if dataset.subject_column else {}
            if "record_id" in dataset.columns:
                references["*"] = clean_id("record_id")
            specs.append(TableErasure(dataset.table, dataset.table.split(".")[0], None, None, "anonymise",
                                      references, tuple(identifying)))
            continue
        columns = []
        for column in identifying:
            source = dataset.raw_columns.get(column, column)
            if source not in raw.columns:
                _fail("data_map.yml", f"{dataset.table}.{column}", f"identifying, but {raw.table} has no column "
                      f"{source!r}: say which raw column it is made from (`raw:`)")
            if source not in columns:
                columns.append(source)
        own_type = record_type(dataset.table)
        record_id = " || '/' || ".join(clean_id(k) if raw.columns[k].upper() == "VARCHAR" else k for k in raw.key)
        references = {}
        if dataset.subject_column and own_type != "customer" and columns:
            references["customer"] = clean_id(dataset.subject_column)
        specs.append(TableErasure(raw.table, raw.system, own_type, record_id, dataset.on_erasure, references,
                                  tuple(columns)))
        if raw.versioned and columns:
            specs.append(TableErasure(raw.table, raw.system, own_type + VERSION_SUFFIX, version_record_id(record_id),
                                      "delete", versions_of=record_id))
    return specs


def load_disclosures(directory: Path = CONFIG_DIR, data_map: DataMap | None = None) -> Disclosures:
    raw = _read("disclosures.yml", directory)
    data_map = data_map or load_data_map(directory)
    _, uses = _taxonomy()

    def qualified(fields: list[str], dataset: str | None, where: str) -> list[str]:
        out = []
        for name in fields:
            full = name if "." in name else f"{dataset}.{name}"
            table, _, column = full.rpartition(".")
            if table not in data_map.datasets or column not in data_map.datasets[table].columns:
                _fail("disclosures.yml", where, f"field {name!r} is not a column of the data map")
            out.append(full)
        return out

    rules = {}
    for entry in raw["rules"]:
        if entry["purpose"] not in uses:
            _fail("disclosures.yml", entry["id"], f"purpose {entry['purpose']!r} is not a fideslang data use")
        rules[entry["id"]] = Rule(entry["id"], entry["title"], entry["description"], entry["purpose"],
                                  entry["notice_section"], qualified(entry["allowed_fields"], None, entry["id"]))
    for country in [*raw["eea_countries"], *(r["country"] for r in raw["recipients"])]:
        if not (isinstance(country, str) and len(country) == 2 and country.isupper()):
            # YAML reads a bare NO (Norway) as false: quote it
            _fail("disclosures.yml", "countries", f"{country!r} is not an ISO 3166 alpha-2 code (quote it)")
    recipients = {}
    for entry in raw["recipients"]:
        if entry["rule"] not in rules:
            _fail("disclosures.yml", entry["name"], f"rule {entry['rule']!r} is not defined")
        recipients[entry["name"]] = Recipient(entry["name"], entry["rule"], entry["country"], entry.get("safeguard"))
    flows = []
    for entry in raw["flows"]:
        entry = dict(entry)
        if entry["rule"] not in rules:
            _fail("disclosures.yml", entry["id"], f"rule {entry['rule']!r} is not defined")
        dataset = entry.get("dataset")
        if dataset is not None and dataset not in data_map.datasets:
            _fail("disclosures.yml", entry["id"], f"dataset {dataset!r} is not in the data map")
        if dataset is None and entry.get("recipient_name") not in recipients:
            _fail("disclosures.yml", entry["id"], "a standing flow names a registered `recipient_name`")
        entry["fields"] = qualified(entry["fields"], dataset, entry["id"])
        flows.append(Flow(**entry))
    return Disclosures(raw["version"], raw["eea_countries"], rules, recipients, flows)


def load_register(directory: Path = CONFIG_DIR) -> Register:
    return Register(_read("register.yml", directory))
