-- One row: the data cut-off the churn marts are measured to, and how fresh each source system is.
with

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

final as (

    select
        data_cutoff.cutoff_date,
        data_cutoff.cutoff_month,
        data_cutoff.first_month,
        data_cutoff.newest_billing_export_on,
        data_cutoff.newest_crm_export_on,
        data_cutoff.newest_services_export_on,
        cast(current_timestamp as timestamp with time zone) as built_at,
        'billing ' || coalesce(cast(data_cutoff.newest_billing_export_on as varchar), 'none')
        || ', crm ' || coalesce(cast(data_cutoff.newest_crm_export_on as varchar), 'none')
        || ', services ' || coalesce(cast(data_cutoff.newest_services_export_on as varchar), 'none')
            as newest_export_per_source

    from data_cutoff

)

select * from final
