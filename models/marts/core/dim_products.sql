-- Product dimension: every product in the catalogue, including products since removed from it (old
-- contracts still refer to them). No personal data.
with

products as (

    select * from {{ ref('stg_services__products') }}

),

final as (

    select
        product_code,
        product_name,
        category,
        monthly_list_price,
        vat_rate_percent,
        deleted_at_source_on as removed_from_catalogue_on,
        not is_deleted_at_source as is_in_catalogue

    from products

)

select * from final
