-- Service contracts with their product category and their state on the data cut-off date.
-- `terminated_on` is the first day without service: a service is active on day d when
-- opened_on <= d and (terminated_on is null or terminated_on > d). Personal data in clear: the ids.
-- A table: two models and their tests read it, and a view recomputed the staging view under it for each.
{{ config(materialized='table') }}

with

services as (

    select * from {{ ref('stg_services__services') }}

),

products as (

    select * from {{ ref('stg_services__products') }}

),

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

final as (

    select
        services.service_id,
        services.customer_id,
        services.product_code,
        products.category as product_category,
        services.monthly_fee,
        services.opened_on,
        services.terminated_on,
        services.termination_reason,
        services.site_code,
        services.is_deleted_at_source,
        not services.is_deleted_at_source
        and services.opened_on <= data_cutoff.cutoff_date
        and coalesce(services.terminated_on > data_cutoff.cutoff_date, true) as is_active_at_cutoff

    from services
    left join products on services.product_code = products.product_code
    cross join data_cutoff

)

select * from final
