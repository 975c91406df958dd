-- One row per service and month in which the service counts: active on the month's measuring day
-- (`int_month_spine.as_of_date`: the month's last day, or the cut-off date in the cut-off month).
-- Services deleted at the source are excluded. Personal data in clear: the ids.
-- A table: services x months, read by the customer-month table and its tests. Incremental by customer: a
-- build recomputes the customers whose services changed (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_id', 'changed_customers': 'services'},
    )
}}

with

services as (

    select * from {{ ref('int_services') }}

),

month_spine as (

    select * from {{ ref('int_month_spine') }}

),

final as (

    select
        services.service_id,
        services.customer_id,
        month_spine.month,
        services.product_code,
        services.product_category,
        services.termination_reason,
        coalesce(services.monthly_fee, 0) as monthly_fee

    from services
    inner join month_spine
        on
            services.opened_on <= month_spine.as_of_date
            and (services.terminated_on is null or services.terminated_on > month_spine.as_of_date)
    where
        not services.is_deleted_at_source
        and {{ is_changed('customer_id', 'services') }}

)

select * from final
