-- One row per customer: who (type, language, area, age band), since when, status on the cut-off date,
-- what they pay now and have paid, and their collection history. No direct identifiers.
with

customers as (

    select * from {{ ref('int_customers') }}

),

services as (

    select * from {{ ref('int_services') }}

),

invoices as (

    select * from {{ ref('int_invoices') }}

),

collection_cases as (

    select * from {{ ref('stg_billing__collection_cases') }}

),

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

service_summary as (

    select
        services.customer_id,
        min(services.opened_on) as first_service_on,
        -- the last day with service: the cut-off while a service is active, else the day before the end
        case
            when bool_or(services.is_active_at_cutoff) then any_value(data_cutoff.cutoff_date)
            else max(services.terminated_on) - 1
        end as last_service_on,
        count(*) filter (where services.is_active_at_cutoff) as active_services,
        coalesce(sum(services.monthly_fee) filter (where services.is_active_at_cutoff), 0) as current_mrr,
        count(*) as services_total

    from services
    cross join data_cutoff
    where not services.is_deleted_at_source and services.opened_on <= data_cutoff.cutoff_date
    group by services.customer_id

),

billing_summary as (

    select
        invoices.customer_id,
        sum(invoices.total_amount) filter (where invoices.status <> 'credited') as lifetime_billed,
        sum(invoices.paid_amount) as lifetime_paid,
        sum(invoices.open_amount) filter (where invoices.is_overdue) as overdue_amount

    from invoices
    group by invoices.customer_id

),

case_summary as (

    select
        collection_cases.customer_id,
        count(*) as collection_cases_total,
        count(*) filter (where collection_cases.status = 'open') as collection_cases_open

    from collection_cases
    group by collection_cases.customer_id

),

final as (

    select
        customers.customer_type,
        customers.business_name,
        customers.language_code as language,  -- noqa: RF04
        customers.postal_area,
        customers.region,
        customers.age_band,
        service_summary.first_service_on,
        service_summary.last_service_on,
        customers.has_einvoice_address,
        customers.has_marketing_consent,
        customers.deleted_at_source_on,
        cast(coalesce(service_summary.active_services, 0) as integer) as active_services,
        cast(coalesce(service_summary.current_mrr, 0) as decimal(18, 2)) as current_mrr,
        cast(coalesce(billing_summary.lifetime_billed, 0) as decimal(18, 2)) as lifetime_billed,
        cast(coalesce(billing_summary.lifetime_paid, 0) as decimal(18, 2)) as lifetime_paid,
        cast(coalesce(billing_summary.overdue_amount, 0) as decimal(18, 2)) as overdue_amount,
        cast(coalesce(case_summary.collection_cases_total, 0) as integer) as collection_cases_total,
        cast(coalesce(case_summary.collection_cases_open, 0) as integer) as collection_cases_open,
        cast(
            date_diff('month', service_summary.first_service_on, service_summary.last_service_on) as integer
        ) as tenure_months,
        pseudonymous_key(customers.customer_id) as customer_key,
        case
            when customers.is_deleted_at_source then 'deleted_at_source'
            when coalesce(service_summary.active_services, 0) > 0 then 'active'
            when service_summary.customer_id is not null then 'churned'
            else 'never_active'
        end as status

    from customers
    left join service_summary on customers.customer_id = service_summary.customer_id
    left join billing_summary on customers.customer_id = billing_summary.customer_id
    left join case_summary on customers.customer_id = case_summary.customer_id

)

select * from final
