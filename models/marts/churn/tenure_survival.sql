-- Kaplan-Meier survival over customer tenure in months: from the customer's first month with MRR (cohort
-- month) to its first churn (event), or censored at the cut-off month if it has not churned.
with

customer_months as (

    select * from {{ ref('customer_months') }}

),

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

lifetimes as (

    select
        customer_months.customer_key,
        min(customer_months.cohort_month) as cohort_month,
        min(customer_months.month) filter (where customer_months.movement = 'churn') as first_churn_month

    from customer_months
    group by customer_months.customer_key

),

durations as (

    select
        date_diff(
            'month', lifetimes.cohort_month, coalesce(lifetimes.first_churn_month, data_cutoff.cutoff_month)
        ) as duration_months,
        lifetimes.first_churn_month is not null as has_churned

    from lifetimes
    cross join data_cutoff

),

tenures as (

    select unnest(generate_series(0, coalesce(max(durations.duration_months), -1))) as tenure_months

    from durations

),

counted as (

    select
        tenures.tenure_months,
        count(durations.duration_months) filter (
            where durations.duration_months >= tenures.tenure_months
        ) as at_risk,
        count(durations.duration_months) filter (
            where durations.duration_months = tenures.tenure_months and durations.has_churned
        ) as churned,
        count(durations.duration_months) filter (
            where durations.duration_months = tenures.tenure_months and not durations.has_churned
        ) as censored

    from tenures
    left join durations on tenures.tenure_months <= durations.duration_months
    group by tenures.tenure_months

),

final as (

    select
        cast(counted.tenure_months as integer) as tenure_months,
        cast(counted.at_risk as integer) as at_risk,
        cast(counted.churned as integer) as churned,
        cast(counted.censored as integer) as censored,
        product(1 - cast(counted.churned as double) / nullif(counted.at_risk, 0)) over (
            order by counted.tenure_months rows between unbounded preceding and current row
        ) as survival

    from counted

)

select * from final
