-- Current collection cases: the latest version of each case from the billing deltas. A case records a
-- disclosure of the customer's personal and billing data to the collection agency.
with

collection_cases as (

    {{ current_rows(source('billing', 'collection_cases'), key='case_id', mode='delta') }}

),

final as (

    select
        {{ clean_string('case_id') }} as case_id,
        {{ clean_string('customer_id') }} as customer_id,
        {{ clean_string('invoice_id') }} as invoice_id,
        {{ clean_string('agency_name') }} as agency_name,
        {{ clean_code('agency_country') }} as agency_country_code,
        handed_over_on,
        amount,
        {{ clean_string('status') }} as status,
        closed_on,
        updated_at,
        _load_id,
        _source_file,
        _line,
        _export_date

    from collection_cases

)

select * from final
