"""The disclosure register (privacy notice § 7): one row per disclosure of a customer's data, from the data and
privacy/disclosures.yml.

dbt builds it in the vault as `intermediate.int_privacy__disclosures`, a Python model that calls
`register_sql` below with the staging models it refs; the mart `privacy.disclosures` (analytics) carries it
with pseudonymous keys. Each flow of disclosures.yml gives rows:

- a recorded flow (`dataset`): one row per row of that staging model (a key handover, a collection case),
  the recipient, date and optional country read from the row's columns;
- a standing flow (a subcontractor): one row per customer of staging.stg_crm__customers that
  `customers_where` selects, dated `since` or the customer's creation if later.

Each row is checked against the rules: the recipient must be registered (`recipients`), the fields sent must
be allowed by the rule of the registered recipient (else of the flow's rule), and a recipient outside the
EU/EEA needs a recorded safeguard. The quality suite expectations/suites/disclosures.yml turns the flags into
error-severity checks.

Which configuration: the folder of the setting `privacy_config` (data_map.yml, disclosures.yml and
register.yml), privacy/ of this project by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.sql import ident, literal
from privacy.config import CONFIG_DIR, DataMap, Disclosures, Flow, load_data_map, load_disclosures

CUSTOMERS = "staging.stg_crm__customers"  # where standing flows find their customers
MODEL_FILE = "models/intermediate/int_privacy__disclosures.py"

# The register's columns, in order (the vault model's; the mart replaces the ids by pseudonymous keys).
COLUMNS = ("flow_id", "rule_id", "flow_kind", "recipient", "recipient_country", "disclosed_on", "customer_id",
           "record_id", "fields", "is_registered_recipient", "recipient_rule_id", "fields_beyond_rule",
           "is_outside_eea", "has_safeguard", "safeguard")


class DisclosureModelError(ValueError):
    """The configuration asks for something the disclosure model cannot build (names what to change)."""


def load(directory: Path = CONFIG_DIR) -> tuple[DataMap, Disclosures]:
    data_map = load_data_map(directory)
    return data_map, load_disclosures(directory, data_map)


def _literal(value: object) -> str:
    return "null" if value is None else literal(str(value))


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]::varchar[]"


def _country_codes(disclosures: Disclosures) -> None:
    """Countries must be alpha-2 strings: YAML 1.1 reads a bare `NO` (Norway) as false."""
    named = [("eea_countries", c) for c in disclosures.eea_countries]
    named += [(f"recipient {r.name!r}", r.country) for r in disclosures.recipients.values()]
    for where, code in named:
        if not isinstance(code, str) or len(code) != 2 or not code.isalpha():
            raise DisclosureModelError(f"disclosures.yml: {where}: {code!r} is not an ISO 3166 alpha-2 country "
                                       "code (quote codes YAML reads as booleans: \"NO\")")


def datasets_read(data_map: DataMap, disclosures: Disclosures) -> dict[str, str]:
    """Staging models the register reads -> the flow that needs it (first one): what the model must ref."""
    needed: dict[str, str] = {}
    for flow in disclosures.flows:
        tables = [flow.dataset] if flow.dataset else [CUSTOMERS]
        if flow.dataset and data_map.datasets[flow.dataset].via:
            tables.append(data_map.datasets[flow.dataset].via[0])
        for table in tables:
            needed.setdefault(table, flow.id)
    return needed


def _check_columns(flow: Flow, data_map: DataMap) -> None:
    dataset = data_map.datasets[flow.dataset]
    for attribute in ("key", "recipient", "date"):
        if not getattr(flow, attribute):
            raise DisclosureModelError(
                f"disclosures.yml: flow {flow.id!r} reads {flow.dataset} and needs `{attribute}`")
    for attribute in ("key", "recipient", "date", "country"):
        column = getattr(flow, attribute)
        if column and column not in dataset.columns:
            raise DisclosureModelError(f"disclosures.yml: flow {flow.id!r}: `{attribute}` {column!r} is not a "
                                       f"column of {flow.dataset} in the data map")


def _recorded(flow: Flow, data_map: DataMap, relations: Mapping[str, str]) -> str:
    _check_columns(flow, data_map)
    dataset = data_map.datasets[flow.dataset]
    join = ""
    if dataset.subject_column:
        customer = f"disclosed_rows.{ident(dataset.subject_column)}"
    else:  # the row belongs to a customer through another dataset (e.g. a payment through its invoice)
        via_table, via_key = dataset.via
        join = (f"\n    left join {relations[via_table]} as subjects"
                f"\n        on disclosed_rows.{ident(via_key)} = subjects.{ident(via_key)}")
        customer = f"subjects.{ident(data_map.datasets[via_table].subject_column)}"
    country = f"cast(disclosed_rows.{ident(flow.country)} as varchar)" if flow.country else "cast(null as varchar)"
    return f"""
    select
        {_literal(flow.id)} as flow_id,
        {_literal(flow.rule)} as rule_id,
        'recorded' as flow_kind,
        cast(disclosed_rows.{ident(flow.recipient)} as varchar) as recipient,
        {country} as row_country,
        cast(disclosed_rows.{ident(flow.date)} as date) as disclosed_on,
        cast({customer} as varchar) as customer_id,
        cast(disclosed_rows.{ident(flow.key)} as varchar) as record_id,
        {_list(flow.fields)} as fields
    from {relations[flow.dataset]} as disclosed_rows{join}"""


def _standing(flow: Flow, data_map: DataMap, relations: Mapping[str, str]) -> str:
    subject = ident(data_map.datasets[CUSTOMERS].subject_column)
    created = "cast(customers.created_at as date)"
    # greatest() skips nulls: a customer without a creation time counts from `since`
    disclosed_on = f"greatest(date {_literal(flow.since.isoformat())}, {created})" if flow.since else created
    where = f"\n    where ({flow.customers_where})" if flow.customers_where else ""
    return f"""
    select
        {_literal(flow.id)} as flow_id,
        {_literal(flow.rule)} as rule_id,
        'standing' as flow_kind,
        {_literal(flow.recipient_name)} as recipient,
        cast(null as varchar) as row_country,
        {disclosed_on} as disclosed_on,
        cast(customers.{subject} as varchar) as customer_id,
        cast(customers.{subject} as varchar) as record_id,
        {_list(flow.fields)} as fields
    from {relations[CUSTOMERS]} as customers{where}"""


def register_sql(data_map: DataMap, disclosures: Disclosures, relations: Mapping[str, str]) -> str:
    """The register as one DuckDB query (columns `COLUMNS`), reading each staging model from `relations`
    (dataset table -> a relation or parenthesised query). A dataset a flow needs that `relations` lacks is
    an error naming the dbt ref to add to the model."""
    missing = {t: f for t, f in datasets_read(data_map, disclosures).items() if t not in relations}
    if missing:
        table, flow = sorted(missing.items())[0]
        model = table.rsplit(".", 1)[1]
        raise DisclosureModelError(
            f"disclosures.yml: flow {flow!r} reads {table}, which the disclosure register does not read: add "
            f'dbt.ref("{model}") to the `refs` of {MODEL_FILE} (dbt needs each ref written out literally)')
    _country_codes(disclosures)
    if not disclosures.flows:
        raise DisclosureModelError("disclosures.yml: no flows: the register would be empty")
    flows = "\n    union all by name\n".join(
        _recorded(f, data_map, relations) if f.dataset else _standing(f, data_map, relations)
        for f in disclosures.flows)
    recipients = "\n        union all\n".join(
        f"        select {_literal(r.name)} as recipient_name, {_literal(r.rule)} as recipient_rule_id, "
        f"{_literal(r.country)} as recipient_country, cast({_literal(r.safeguard)} as varchar) as safeguard"
        for r in disclosures.recipients.values()) or (
        "        select null::varchar as recipient_name, null::varchar as recipient_rule_id, "
        "null::varchar as recipient_country, null::varchar as safeguard where false")
    rules = "\n        union all\n".join(
        f"        select {_literal(r.id)} as rule_id, {_list(r.allowed_fields)} as allowed_fields"
        for r in disclosures.rules.values())
    eea = _list([c.upper() for c in disclosures.eea_countries])
    return f"""
with

recipients as (
{recipients}
),

rules as (
{rules}
),

flows as (
{flows}
),

checked as (
    select
        flows.*,
        upper(coalesce(flows.row_country, recipients.recipient_country)) as country,
        recipients.recipient_name is not null as is_registered_recipient,
        recipients.recipient_rule_id,
        recipients.safeguard,
        -- a registered recipient is held to its own rule, whatever the flow says
        list_filter(flows.fields, lambda f: not list_contains(coalesce(rules.allowed_fields, []), f))
            as fields_beyond_rule
    from flows
    left join recipients on flows.recipient = recipients.recipient_name
    left join rules on coalesce(recipients.recipient_rule_id, flows.rule_id) = rules.rule_id
)

select
    flow_id,
    rule_id,
    flow_kind,
    recipient,
    country as recipient_country,
    disclosed_on,
    customer_id,
    record_id,
    fields,
    is_registered_recipient,
    recipient_rule_id,
    fields_beyond_rule,
    case when country is not null then not list_contains({eea}, country) end as is_outside_eea,
    safeguard is not null as has_safeguard,
    safeguard
from checked
"""
