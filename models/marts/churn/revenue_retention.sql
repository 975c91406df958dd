-- 12-month gross and net revenue retention: for each month, the fixed cohort of customers with MRR in the
-- month 12 months earlier, their MRR then and now. Months without a month 12 months earlier are absent.
with

customer_months as (

    select * from {{ ref('customer_months') }}

),

month_spine as (

    select * from {{ ref('int_month_spine') }}

),

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

cohort_now as (

    select
        now_month.month,
        then_month.month as cohort_month,
        then_month.customer_key,
        then_month.mrr as start_mrr,
        now_month.mrr as end_mrr

    from customer_months as then_month
    inner join customer_months as now_month
        on
            then_month.customer_key = now_month.customer_key
            and now_month.month = cast(then_month.month + interval 12 month as date)
    where then_month.mrr > 0

),

totals as (

    select
        cohort_now.month,
        count(*) as cohort_customers,
        sum(cohort_now.start_mrr) as cohort_start_mrr,
        sum(least(cohort_now.end_mrr, cohort_now.start_mrr)) as retained_mrr,
        sum(cohort_now.end_mrr) as end_mrr

    from cohort_now
    group by cohort_now.month

),

final as (

    select
        month_spine.month,
        cast(month_spine.month - interval 12 month as date) as cohort_month,
        cast(coalesce(totals.cohort_customers, 0) as integer) as cohort_customers,
        cast(coalesce(totals.cohort_start_mrr, 0) as decimal(18, 2)) as cohort_start_mrr,
        cast(coalesce(totals.retained_mrr, 0) as decimal(18, 2)) as retained_mrr,
        cast(coalesce(totals.end_mrr, 0) as decimal(18, 2)) as end_mrr,
        cast(totals.retained_mrr as double) / nullif(totals.cohort_start_mrr, 0) as gross_revenue_retention,
        cast(totals.end_mrr as double) / nullif(totals.cohort_start_mrr, 0) as net_revenue_retention

    from month_spine
    cross join data_cutoff
    left join totals on month_spine.month = totals.month
    where month_spine.month - interval 12 month >= data_cutoff.first_month

)

select * from final
