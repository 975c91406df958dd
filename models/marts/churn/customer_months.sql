-- One row per customer and month from the customer's first month with MRR to the cut-off month: MRR,
-- the month's movement and its parts. Keyed by the pseudonymous customer_key.
-- Incremental by customer, as the vault tables it reads (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_key', 'changed_customers': 'services'},
    )
}}
with

customer_months as (

    select * from {{ ref('int_customer_months') }}
    where {{ is_changed('customer_id', 'int_customer_months') }}

),

customers as (

    select * from {{ ref('int_customers') }}

),

-- the keyed hash once per customer, not once per customer and month
customer_keys as (

    select
        customer_months.customer_id,
        pseudonymous_key(customer_months.customer_id) as customer_key

    from customer_months
    group by customer_months.customer_id

),

final as (

    select
        customer_keys.customer_key,
        customer_months.month,
        customer_months.movement,
        customer_months.tenure_band,
        customer_months.cohort_month,
        customer_months.churn_type,
        customer_months.termination_reasons,
        cast(customer_months.mrr as decimal(18, 2)) as mrr,
        cast(customer_months.previous_mrr as decimal(18, 2)) as previous_mrr,
        cast(customer_months.new_mrr as decimal(18, 2)) as new_mrr,
        cast(customer_months.expansion_mrr as decimal(18, 2)) as expansion_mrr,
        cast(customer_months.contraction_mrr as decimal(18, 2)) as contraction_mrr,
        cast(customer_months.churned_mrr as decimal(18, 2)) as churned_mrr,
        cast(customer_months.reactivation_mrr as decimal(18, 2)) as reactivation_mrr,
        cast(customer_months.tenure_months as integer) as tenure_months,
        cast(customer_months.active_services as integer) as active_services,
        coalesce(customers.customer_type, 'unknown') as customer_type,
        coalesce(customers.region, 'unknown') as region

    from customer_months
    inner join customer_keys on customer_months.customer_id = customer_keys.customer_id
    left join customers on customer_months.customer_id = customers.customer_id

)

select * from final
