-- Retention status of every record of the customer register, for the privacy officer and the scheduled
-- audit (`warehouse audit`). No personal data: records and customers appear only as pseudonymous keys
-- (HMAC of the operational id, warehouse/pseudonym.py); look a record up by computing the key of its id.
with

records as (

    select * from {{ ref('int_retention__records') }}

),

pseudonymised as (

    select
        records.*,
        cast(records.days_past_expiry as integer) as days_past_expiry_days,
        pseudonymous_key(records.record_id) as record_key,
        pseudonymous_key(records.customer_id) as customer_key

    from records

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
