-- The MRR bridge must balance every month: start + new + expansion + reactivation - contraction - churn
-- = end, and start must equal the previous month's end. Fails with the offending months.
with

movements as (

    select * from {{ ref('monthly_movements') }}

),

checked as (

    select
        movements.month,
        movements.start_mrr,
        movements.end_mrr,
        movements.start_mrr + movements.new_mrr + movements.expansion_mrr + movements.reactivation_mrr
        - movements.contraction_mrr - movements.churned_mrr as bridged_end_mrr,
        coalesce(lag(movements.end_mrr) over (order by movements.month), 0) as previous_end_mrr

    from movements

),

final as (

    select
        checked.month,
        checked.start_mrr,
        checked.end_mrr,
        checked.bridged_end_mrr,
        checked.previous_end_mrr

    from checked
    where checked.bridged_end_mrr <> checked.end_mrr or checked.start_mrr <> checked.previous_end_mrr

)

select * from final
