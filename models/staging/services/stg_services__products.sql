-- Current product catalogue: the latest snapshot, plus products since removed from the catalogue
-- (flagged deleted at the source). No personal data.
with

products as (

    {{ current_rows(source('services', 'products'), key='product_code', mode='snapshot') }}

),

final as (

    select
        {{ clean_string('product_code') }} as product_code,
        {{ clean_string('product_name') }} as product_name,
        {{ clean_string('category') }} as category,
        monthly_list_price,
        vat_rate as vat_rate_percent,
        is_deleted_at_source,
        deleted_at_source_on,
        _load_id,
        _source_file,
        _line,
        _export_date

    from products

)

select * from final
