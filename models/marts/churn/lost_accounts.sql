-- One row per churn event (a customer's MRR fell to 0 in the month): who was lost, how much MRR, after
-- how long, and why. A customer who churns, reactivates and churns again appears once per churn.
with

customer_months as (

    select * from {{ ref('int_customer_months') }}

),

customers as (

    select * from {{ ref('int_customers') }}

),

final as (

    select
        customer_months.month,
        customers.business_name,
        customer_months.termination_reasons,
        customer_months.churn_type,
        customer_months.cohort_month,
        cast(customer_months.churned_mrr as decimal(18, 2)) as lost_mrr,
        cast(customer_months.tenure_months as integer) as tenure_months,
        pseudonymous_key(customer_months.customer_id) as customer_key,
        coalesce(customers.customer_type, 'unknown') as customer_type,
        coalesce(customers.region, 'unknown') as region

    from customer_months
    left join customers on customer_months.customer_id = customers.customer_id
    where customer_months.movement = 'churn'

)

select * from final
