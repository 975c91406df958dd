-- The MRR bridge, one row per month of the spine: customers and MRR at the start of the month, the
-- movements (in MRR and in customers), the end, and the churn rates (null when the denominator is 0).
with

customer_months as (

    select * from {{ ref('customer_months') }}

),

month_spine as (

    select * from {{ ref('int_month_spine') }}

),

totals as (

    select
        customer_months.month,
        count(*) filter (where customer_months.previous_mrr > 0) as customers_start,
        count(*) filter (where customer_months.movement = 'new') as customers_new,
        count(*) filter (where customer_months.movement = 'reactivation') as customers_reactivated,
        count(*) filter (where customer_months.movement = 'churn') as customers_churned,
        count(*) filter (where customer_months.mrr > 0) as customers_end,
        sum(customer_months.previous_mrr) as start_mrr,
        sum(customer_months.new_mrr) as new_mrr,
        sum(customer_months.expansion_mrr) as expansion_mrr,
        sum(customer_months.reactivation_mrr) as reactivation_mrr,
        sum(customer_months.contraction_mrr) as contraction_mrr,
        sum(customer_months.churned_mrr) as churned_mrr,
        sum(customer_months.mrr) as end_mrr,
        sum(customer_months.churned_mrr) filter (
            where customer_months.churn_type = 'voluntary'
        ) as voluntary_churned_mrr,
        sum(customer_months.churned_mrr) filter (
            where customer_months.churn_type = 'involuntary'
        ) as involuntary_churned_mrr,
        count(*) filter (where customer_months.churn_type = 'voluntary') as customers_churned_voluntary,
        count(*) filter (where customer_months.churn_type = 'involuntary') as customers_churned_involuntary,
        count(*) filter (where customer_months.movement = 'expansion') as customers_expanded,
        count(*) filter (where customer_months.movement = 'contraction') as customers_contracted

    from customer_months
    group by customer_months.month

),

filled as (

    select
        month_spine.month,
        coalesce(totals.customers_start, 0) as customers_start,
        coalesce(totals.customers_new, 0) as customers_new,
        coalesce(totals.customers_reactivated, 0) as customers_reactivated,
        coalesce(totals.customers_churned, 0) as customers_churned,
        coalesce(totals.customers_end, 0) as customers_end,
        coalesce(totals.start_mrr, 0) as start_mrr,
        coalesce(totals.new_mrr, 0) as new_mrr,
        coalesce(totals.expansion_mrr, 0) as expansion_mrr,
        coalesce(totals.reactivation_mrr, 0) as reactivation_mrr,
        coalesce(totals.contraction_mrr, 0) as contraction_mrr,
        coalesce(totals.churned_mrr, 0) as churned_mrr,
        coalesce(totals.end_mrr, 0) as end_mrr,
        coalesce(totals.voluntary_churned_mrr, 0) as voluntary_churned_mrr,
        coalesce(totals.involuntary_churned_mrr, 0) as involuntary_churned_mrr,
        coalesce(totals.customers_churned_voluntary, 0) as customers_churned_voluntary,
        coalesce(totals.customers_churned_involuntary, 0) as customers_churned_involuntary,
        coalesce(totals.customers_expanded, 0) as customers_expanded,
        coalesce(totals.customers_contracted, 0) as customers_contracted

    from month_spine
    left join totals on month_spine.month = totals.month

),

final as (

    select
        filled.month,
        cast(filled.customers_start as integer) as customers_start,
        cast(filled.customers_new as integer) as customers_new,
        cast(filled.customers_reactivated as integer) as customers_reactivated,
        cast(filled.customers_churned as integer) as customers_churned,
        cast(filled.customers_end as integer) as customers_end,
        cast(filled.start_mrr as decimal(18, 2)) as start_mrr,
        cast(filled.new_mrr as decimal(18, 2)) as new_mrr,
        cast(filled.expansion_mrr as decimal(18, 2)) as expansion_mrr,
        cast(filled.reactivation_mrr as decimal(18, 2)) as reactivation_mrr,
        cast(filled.contraction_mrr as decimal(18, 2)) as contraction_mrr,
        cast(filled.churned_mrr as decimal(18, 2)) as churned_mrr,
        cast(filled.end_mrr as decimal(18, 2)) as end_mrr,
        cast(filled.voluntary_churned_mrr as decimal(18, 2)) as voluntary_churned_mrr,
        cast(filled.involuntary_churned_mrr as decimal(18, 2)) as involuntary_churned_mrr,
        cast(filled.customers_churned_voluntary as integer) as customers_churned_voluntary,
        cast(filled.customers_churned_involuntary as integer) as customers_churned_involuntary,
        cast(filled.customers_expanded as integer) as customers_expanded,
        cast(filled.customers_contracted as integer) as customers_contracted,
        cast(filled.customers_churned as double) / nullif(filled.customers_start, 0) as logo_churn_rate,
        cast(filled.churned_mrr + filled.contraction_mrr as double)
        / nullif(filled.start_mrr, 0) as gross_mrr_churn_rate,
        cast(
            filled.churned_mrr + filled.contraction_mrr - filled.expansion_mrr - filled.reactivation_mrr
            as double
        ) / nullif(filled.start_mrr, 0) as net_mrr_churn_rate

    from filled

)

select * from final
