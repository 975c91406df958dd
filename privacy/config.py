"""The privacy configuration: data map, disclosure rules and register description, loaded and validated.

Three YAML files beside this module (data_map.yml, disclosures.yml, register.yml) plus retention/policy.yml
describe the register once; subject access, rectification, the disclosure register and the privacy notice all
read them from here. Loading validates every cross-reference (categories against fideslang's taxonomy, data
uses, sources, recipients, fields), so a typo fails at once with the file and the entry named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from fideslang.default_taxonomy import DEFAULT_TAXONOMY

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

    @property
    def personal_columns(self) -> list[str]:
        return [c for c, category in self.columns.items() if category != NOT_PERSONAL]


@dataclass(frozen=True)
class DataMap:
    version: str
    datasets: dict[str, Dataset]  # table -> dataset
    lineage_columns: list[str]
    not_personal: list[str]

    def category(self, qualified_column: str) -> str:
        table, column = qualified_column.rsplit(".", 1)
        return self.datasets[table].columns[column]


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
        columns = dict(entry["columns"])
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
                                  entry["purposes"], entry.get("rectifiable", []))
    for dataset in datasets.values():
        if dataset.via and (dataset.via[0] not in datasets or datasets[dataset.via[0]].subject_column is None):
            _fail("data_map.yml", dataset.table, f"`via` {dataset.via[0]!r} must be a dataset with a subject column")
    return DataMap(raw["version"], datasets, raw["lineage_columns"], raw["not_personal"])


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
