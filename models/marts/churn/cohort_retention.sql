-- Logo and revenue retention by acquisition cohort (the month of a customer's first MRR), for every month
-- since the cohort started up to the cut-off month.
with

customer_months as (

    select * from {{ ref('customer_months') }}

),

cohort_sizes as (

    select
        customer_months.cohort_month,
        count(*) as cohort_customers,
        sum(customer_months.mrr) as cohort_start_mrr

    from customer_months
    where customer_months.month = customer_months.cohort_month
    group by customer_months.cohort_month

),

by_month as (

    select
        customer_months.cohort_month,
        date_diff('month', customer_months.cohort_month, customer_months.month) as months_since_start,
        count(*) filter (where customer_months.mrr > 0) as active_customers,
        sum(customer_months.mrr) as mrr

    from customer_months
    group by customer_months.cohort_month, customer_months.month

),

final as (

    select
        by_month.cohort_month,
        cast(by_month.months_since_start as integer) as months_since_start,
        cast(cohort_sizes.cohort_customers as integer) as cohort_customers,
        cast(by_month.active_customers as integer) as active_customers,
        cast(cohort_sizes.cohort_start_mrr as decimal(18, 2)) as cohort_start_mrr,
        cast(by_month.mrr as decimal(18, 2)) as mrr,
        cast(by_month.active_customers as double)
        / nullif(cohort_sizes.cohort_customers, 0) as logo_retention,
        cast(by_month.mrr as double) / nullif(cohort_sizes.cohort_start_mrr, 0) as revenue_retention

    from by_month
    inner join cohort_sizes on by_month.cohort_month = cohort_sizes.cohort_month

)

select * from final
