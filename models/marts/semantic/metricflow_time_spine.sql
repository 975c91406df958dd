-- MetricFlow's time spine: one row per day of the churn marts' months, from the first month of the spine
-- to the last day of the cut-off month (days after it do not exist in the data, as months after it do not).
with

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

days as (

    select
        unnest(generate_series(
            cast(data_cutoff.first_month as timestamp),
            cast(data_cutoff.cutoff_month + interval 1 month - interval 1 day as timestamp),
            interval 1 day
        )) as day_start

    from data_cutoff

),

final as (

    select cast(days.day_start as date) as date_day

    from days

)

select * from final
