"""The disclosure register (privacy notice § 7), one row per disclosure, read from the data at build time.

privacy/disclosures.yml is the one source of truth for who may receive what and where disclosures are
recorded: this model loads and validates it with the data map (privacy/config.py) and runs the query
privacy/disclosures.py generates from it, in DuckDB. An invalid configuration fails the build.

Which configuration: the folder of the setting `privacy_config` (data_map.yml, disclosures.yml, register.yml),
passed as a dbt var; privacy/ of this project by default.

dbt only sees refs written out literally: `refs` below lists every staging model a flow may read. A flow on
another dataset fails the build with a message naming the `dbt.ref("...")` to add here.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    from privacy.disclosures import load, register_sql

    refs = {
        "staging.stg_crm__customers": dbt.ref("stg_crm__customers"),
        "staging.stg_services__key_handovers": dbt.ref("stg_services__key_handovers"),
        "staging.stg_billing__collection_cases": dbt.ref("stg_billing__collection_cases"),
        "staging.stg_billing__invoices": dbt.ref("stg_billing__invoices"),
    }
    from pathlib import Path

    data_map, disclosures = load(Path(dbt.config.meta_get("privacy_config")))
    relations = {table: f"({relation.sql_query()})" for table, relation in refs.items()}
    return session.sql(register_sql(data_map, disclosures, relations))
