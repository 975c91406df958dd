"""Customers in a dispute, from the policy file's `legal_holds.disputes` (read at build time, validated).

Open collection cases are the other legal hold; int_retention__records derives those from billing data.
"""

import pandas as pd


def model(dbt, session):
    dbt.config(materialized="table")
    from retention.policy import dispute_rows, load_policy

    rows = dispute_rows(load_policy(dbt.config.meta_get("retention_policy")))
    return pd.DataFrame({
        "customer_id": pd.Series([r["customer_id"] for r in rows], dtype="string"),
        "reason": pd.Series([r["reason"] for r in rows], dtype="string"),
        "since": pd.Series(pd.to_datetime([r["since"] for r in rows]), dtype="datetime64[ns]"),
    })
