-- Current customer register: the latest CRM snapshot, plus customers deleted at the source (kept from
-- their last appearance, flagged). Personal data in clear: this view lives in the vault only.
with

customers as (

    {{ current_rows(source('crm', 'customers'), key='customer_id', mode='snapshot') }}

),

cleaned as (

    select
        {{ clean_string('customer_id') }} as customer_id,
        {{ clean_string('customer_type') }} as customer_type,
        {{ clean_string('first_name') }} as first_name,
        {{ clean_string('last_name') }} as last_name,
        {{ clean_string('company_name') }} as company_name,
        {{ clean_code('business_id') }} as business_id,
        {{ clean_code('hetu') }} as hetu,
        {{ clean_email('email') }} as email,
        {{ normalise_phone_fi('phone') }} as phone,
        phone as phone_raw,
        {{ clean_string('street_address') }} as street_address,
        {{ clean_string('postal_code') }} as postal_code,
        {{ clean_string('city') }} as city,
        {{ clean_code('country_code') }} as country_code,
        {{ clean_string('billing_street_address') }} as billing_street_address,
        {{ clean_string('billing_postal_code') }} as billing_postal_code,
        {{ clean_string('billing_city') }} as billing_city,
        {{ clean_code('billing_country_code') }} as billing_country_code,
        {{ clean_string('einvoice_address') }} as einvoice_address,
        {{ clean_string('language') }} as language_code,
        marketing_consent as has_marketing_consent,
        created_at,
        updated_at,
        is_deleted_at_source,
        deleted_at_source_on,
        _load_id,
        _source_file,
        _line,
        _export_date

    from customers

),

objections as (

    select * from {{ source('privacy', 'objections') }}

),

-- objections to direct marketing (`warehouse object`, GDPR art. 21): absolute, whatever the CRM says later
objected as (

    select
        objections.customer_id,
        cast(timezone('Europe/Helsinki', min(objections.recorded_at)) as date) as objected_to_marketing_on

    from objections
    where objections.scope = 'direct_marketing'
    group by objections.customer_id

),

-- corrections recorded by `warehouse rectify` (GDPR art. 16), applied while the export still carries the
-- value they correct
rectified as (

    {{ apply_rectifications(
        'cleaned', 'staging.stg_crm__customers', key='customer_id', companions={'phone': 'phone_raw'}
    ) }}

),

final as (

    -- the columns in the export's order: has_marketing_consent, a calculation, keeps its place
    select  -- noqa: ST06
        rectified.customer_id,
        rectified.customer_type,
        rectified.first_name,
        rectified.last_name,
        rectified.company_name,
        rectified.business_id,
        rectified.hetu,
        rectified.email,
        rectified.phone,
        rectified.phone_raw,
        rectified.street_address,
        rectified.postal_code,
        rectified.city,
        rectified.country_code,
        rectified.billing_street_address,
        rectified.billing_postal_code,
        rectified.billing_city,
        rectified.billing_country_code,
        rectified.einvoice_address,
        rectified.language_code,
        rectified.has_marketing_consent and objected.customer_id is null as has_marketing_consent,
        objected.objected_to_marketing_on,
        rectified.created_at,
        rectified.updated_at,
        rectified.is_deleted_at_source,
        rectified.deleted_at_source_on,
        rectified._load_id,
        rectified._source_file,
        rectified._line,
        rectified._export_date,
        rectified.rectified_columns

    from rectified
    left join objected on rectified.customer_id = objected.customer_id

)

select * from final
