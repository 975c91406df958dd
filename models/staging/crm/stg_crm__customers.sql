-- Current customer register: the latest CRM snapshot, plus customers deleted at the source (kept from
-- their last appearance, flagged). Personal data in clear: this view lives in the vault only.
with

customers as (

    {{ current_rows(source('crm', 'customers'), key='customer_id', mode='snapshot') }}

),

final as (

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

)

select * from final
