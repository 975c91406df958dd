-- Retention status of every record of the customer register, for the privacy officer and the scheduled
-- audit (`warehouse audit`). No personal data: records and customers appear only as pseudonymous keys
-- (HMAC of the operational id, warehouse/pseudonym.py); look a record up by computing the key of its id.
-- Incremental by customer, as the vault tables it reads (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={
            'partition_key': 'customer_key',
            'changed_customers': 'retention',
            'refresh_kept_rows': 'refreshed_retention_status',
        },
    )
}}
with

records as (

    select * from {{ ref('int_retention__records') }}
    where {{ is_changed('customer_id', 'int_retention__records') }}

),

customer_keys as (

    -- one key per customer, not per record: the HMAC is the costly part of this model
    select
        customers.customer_id,
        pseudonymous_key(customers.customer_id) as customer_key

    from (select distinct records.customer_id from records) as customers

),

pseudonymised as (

    select
        records.*,
        cast(records.days_past_expiry as integer) as days_past_expiry_days,
        customer_keys.customer_key

    from records
    left join customer_keys on records.customer_id = customer_keys.customer_id

),

final as (

    select
        pseudonymised.record_type,
        pseudonymised.record_key,
        pseudonymised.customer_key,
        pseudonymised.category,
        pseudonymised.rule_id,
        pseudonymised.clock_event,
        pseudonymised.clock_started_on,
        pseudonymised.expires_on,
        pseudonymised.status,
        pseudonymised.hold_reason,
        pseudonymised.days_past_expiry_days as days_past_expiry,
        pseudonymised.as_of_date,
        pseudonymised.policy_version

    from pseudonymised

)

select * from final
