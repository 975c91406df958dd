-- One row per month from the month of the first service ever opened to the month of the data cut-off.
-- `as_of_date` is the day a month is measured on: its last day, or the cut-off date in the cut-off month.
with

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

months as (

    select
        unnest(
            generate_series(data_cutoff.first_month, data_cutoff.cutoff_month, interval 1 month)
        ) as month_start

    from data_cutoff

),

final as (

    select
        cast(months.month_start as date) as month,  -- noqa: RF04
        least(last_day(cast(months.month_start as date)), data_cutoff.cutoff_date) as as_of_date,
        cast(months.month_start as date) = data_cutoff.cutoff_month as is_cutoff_month

    from months
    cross join data_cutoff

)

select * from final
