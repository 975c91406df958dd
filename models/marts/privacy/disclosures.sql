-- The disclosure register (privacy notice § 7) for the privacy officer: one row per disclosure of a
-- customer's data (key handovers, collection cases, configured subcontractors) with its recipient, country,
-- date and fields, and the flags the quality suite `disclosures` checks. No personal data: the customer and
-- the record appear only as pseudonymous keys; recipients are companies.
with

disclosures as (

    select * from {{ ref('int_privacy__disclosures') }}

),

final as (

    select
        disclosures.flow_id,
        disclosures.rule_id,
        disclosures.flow_kind,
        disclosures.recipient,
        disclosures.recipient_country,
        disclosures.disclosed_on,
        disclosures.fields,
        disclosures.is_registered_recipient,
        disclosures.recipient_rule_id,
        disclosures.fields_beyond_rule,
        disclosures.is_outside_eea,
        disclosures.has_safeguard,
        disclosures.safeguard,
        pseudonymous_key(disclosures.record_id) as record_key,
        pseudonymous_key(disclosures.customer_id) as customer_key

    from disclosures

)

select * from final
