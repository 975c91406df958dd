-- Current service contracts: the latest snapshot, plus contracts since deleted at the source (flagged).
with

services as (

    {{ current_rows(source('services', 'services'), key='service_id', mode='snapshot') }}

),

final as (

    select
        {{ clean_string('service_id') }} as service_id,
        {{ clean_string('customer_id') }} as customer_id,
        {{ clean_string('product_code') }} as product_code,
        monthly_fee,
        opened_on,
        terminated_on,
        {{ clean_string('termination_reason') }} as termination_reason,
        {{ clean_code('site') }} as site_code,
        {{ clean_string('username') }} as service_username,
        {{ clean_string('identifier') }} as service_identifier,
        updated_at,
        is_deleted_at_source,
        deleted_at_source_on,
        _load_id,
        _source_file,
        _line,
        _export_date

    from services

)

select * from final
