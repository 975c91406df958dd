-- One row per customer and month from the customer's first month with MRR (its cohort month) to the
-- cut-off month, with the month's MRR movement (ChartMogul definitions, see _intermediate__models.yml).
-- Personal data in clear: `customer_id`. A table, not a view: several churn marts and tests read it.
-- Incremental by customer, as int_service_months (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_id', 'changed_customers': 'services'},
    )
}}

with

service_months as (

    select * from {{ ref('int_service_months') }}
    where {{ is_changed('customer_id', 'int_service_months') }}

),

month_spine as (

    select * from {{ ref('int_month_spine') }}

),

customer_mrr as (

    select
        service_months.customer_id,
        service_months.month,
        sum(service_months.monthly_fee) as mrr,
        count(*) as active_services

    from service_months
    group by service_months.customer_id, service_months.month

),

cohorts as (

    select
        customer_mrr.customer_id,
        min(customer_mrr.month) as cohort_month

    from customer_mrr
    where customer_mrr.mrr > 0
    group by customer_mrr.customer_id

),

grid as (

    select
        cohorts.customer_id,
        cohorts.cohort_month,
        month_spine.month,
        coalesce(customer_mrr.mrr, 0) as mrr,
        coalesce(customer_mrr.active_services, 0) as active_services

    from cohorts
    inner join month_spine on cohorts.cohort_month <= month_spine.month
    left join customer_mrr
        on
            cohorts.customer_id = customer_mrr.customer_id
            and month_spine.month = customer_mrr.month

),

with_previous as (

    select
        grid.*,
        coalesce(lag(grid.mrr) over customer_history, 0) as previous_mrr,
        coalesce(
            bool_or(grid.mrr > 0) over (
                customer_history rows between unbounded preceding and 1 preceding
            ),
            false
        ) as had_mrr_before

    from grid
    window customer_history as (partition by grid.customer_id order by grid.month)

),

-- services that counted in the previous month and no longer count: what a churn lost
lost_services as (

    select
        previous_month.customer_id,
        cast(previous_month.month + interval 1 month as date) as month,  -- noqa: RF04
        bool_and(coalesce(previous_month.termination_reason = 'non_payment', false)) as all_non_payment,
        {{ sorted_distinct_list("coalesce(previous_month.termination_reason, 'unknown')") }}
            as termination_reasons

    from service_months as previous_month
    left join service_months as this_month
        on
            previous_month.service_id = this_month.service_id
            and this_month.month = cast(previous_month.month + interval 1 month as date)
    where this_month.service_id is null
    group by previous_month.customer_id, cast(previous_month.month + interval 1 month as date)

),

classified as (

    select
        with_previous.*,
        case
            when with_previous.mrr > 0 and with_previous.previous_mrr = 0 and not with_previous.had_mrr_before
                then 'new'
            when with_previous.mrr > 0 and with_previous.previous_mrr = 0 then 'reactivation'
            when with_previous.mrr = 0 and with_previous.previous_mrr > 0 then 'churn'
            when with_previous.mrr = 0 then 'inactive'
            when with_previous.mrr > with_previous.previous_mrr then 'expansion'
            when with_previous.mrr < with_previous.previous_mrr then 'contraction'
            else 'retained'
        end as movement

    from with_previous

),

final as (

    select
        classified.customer_id,
        classified.month,
        classified.mrr,
        classified.previous_mrr,
        classified.movement,
        classified.active_services,
        classified.cohort_month,
        case when classified.movement = 'new' then classified.mrr else 0 end as new_mrr,
        case
            when classified.movement = 'expansion' then classified.mrr - classified.previous_mrr else 0
        end as expansion_mrr,
        case
            when classified.movement = 'contraction' then classified.previous_mrr - classified.mrr else 0
        end as contraction_mrr,
        case when classified.movement = 'churn' then classified.previous_mrr else 0 end as churned_mrr,
        case when classified.movement = 'reactivation' then classified.mrr else 0 end as reactivation_mrr,
        date_diff('month', classified.cohort_month, classified.month) as tenure_months,
        case
            when date_diff('month', classified.cohort_month, classified.month) < 12 then '0-11 months'
            when date_diff('month', classified.cohort_month, classified.month) < 24 then '12-23 months'
            when date_diff('month', classified.cohort_month, classified.month) < 36 then '24-35 months'
            when date_diff('month', classified.cohort_month, classified.month) < 60 then '36-59 months'
            else '60+ months'
        end as tenure_band,
        case
            when classified.movement <> 'churn' then null
            when lost_services.all_non_payment then 'involuntary'
            else 'voluntary'
        end as churn_type,
        case
            when classified.movement = 'churn' then lost_services.termination_reasons
        end as termination_reasons

    from classified
    left join lost_services
        on
            classified.customer_id = lost_services.customer_id
            and classified.month = lost_services.month

)

select * from final
