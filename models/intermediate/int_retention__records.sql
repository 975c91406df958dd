-- Every record of the register with its retention status on the audit date (int_retention__audit_date,
-- macros/retention/status.sql): `on_hold` if a legal hold applies to the customer (open collection case, or a
-- dispute in the policy), else `overdue` when as_of_date > expires_on, `due_soon` when expires_on is at most
-- `due_soon_days` after as_of_date, else `kept` (also while the clock has not started). Records in the
-- erasure ledger are left out. Personal data in clear: the ids.
-- A view over the incremental int_retention__expiries: the status moves with the audit date every day, the
-- expiry dates only with the data.
with

expiries as (

    select * from {{ ref('int_retention__expiries') }}

),

audit_date as (

    select * from {{ ref('int_retention__audit_date') }}

),

rules as (

    select * from {{ ref('int_retention__rules') }}

),

erased as (

    select * from {{ source('retention', 'erasure_ledger') }}

),

policy as (

    select
        cast(any_value(rules.policy_version) as varchar) as policy_version,
        cast(any_value(rules.due_soon_days) as integer) as due_soon_days

    from rules

),

final as (

    select
        expiries.record_type,
        expiries.record_id,
        expiries.record_key,
        expiries.customer_id,
        expiries.category,
        expiries.rule_id,
        expiries.clock_event,
        expiries.clock_started_on,
        expiries.expires_on,
        {{ retention_status('expiries.expires_on', 'expiries.hold_reason', 'audit_date.as_of_date',
                            'policy.due_soon_days') }} as status,
        expiries.hold_reason,
        {{ days_past_expiry('expiries.expires_on', 'audit_date.as_of_date') }} as days_past_expiry,
        audit_date.as_of_date,
        policy.policy_version

    from expiries
    cross join audit_date
    cross join policy
    -- erased by the retention enforcement: what is left (an anonymised customer's number) is not overdue.
    -- An explicit anti join, not `where not exists (...)`: DuckDB plans that correlated subquery as a
    -- DELIM_JOIN, which buffers every record with its key and hashes the distinct (record_type,
    -- record_key) pairs before it joins, and that fails with "Out of Memory" instead of spilling. The anti
    -- join builds its hash table on the (small) ledger and streams the records past it.
    anti join erased
        on
            expiries.record_type = erased.record_type
            and expiries.record_key = erased.record_key

)

select * from final
