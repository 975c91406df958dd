-- One row per service contract, keyed pseudonymously; no usernames or circuit identifiers.
-- Incremental by customer, as the vault tables it reads (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_key', 'changed_customers': 'services'},
    )
}}
with

services as (

    select * from {{ ref('int_services') }}
    where {{ is_changed('customer_id', 'int_services') }}

),

final as (

    select
        services.product_code,
        services.product_category,
        services.opened_on,
        services.terminated_on,
        services.termination_reason,
        services.site_code,
        services.is_active_at_cutoff,
        services.is_deleted_at_source,
        cast(services.monthly_fee as decimal(12, 2)) as monthly_fee,
        pseudonymous_key(services.service_id) as service_key,
        pseudonymous_key(services.customer_id) as customer_key

    from services

)

select * from final
