"""The retention rules, one row per rule, read from the policy file at build time.

retention/policy.yml is the one source of truth: this model loads and validates it (retention/policy.py; the
setting `retention_policy` names another file, passed as a dbt var) and an invalid policy fails the build.
"""

import pandas as pd


def model(dbt, session):
    dbt.config(materialized="table")
    from retention.policy import load_policy, rules_rows

    frame = pd.DataFrame(rules_rows(load_policy(dbt.config.meta_get("retention_policy"))))
    frame["policy_effective_from"] = pd.to_datetime(frame["policy_effective_from"])
    return frame
