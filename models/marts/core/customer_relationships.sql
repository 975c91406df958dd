-- One row per customer answering without joins: who, since when, with what, how do they pay.
with

customers as (

    select * from {{ ref('customers') }}

),

services as (

    select * from {{ ref('services') }}

),

invoices as (

    select * from {{ ref('invoices') }}

),

payments as (

    select * from {{ ref('payments') }}

),

-- Lists from sorted_distinct_list, not string_agg(distinct ... order by ...), and the usual method from
-- counts, not mode(): those two keep per-customer state outside DuckDB's memory limit (while this model ran
-- the 1M build's process grew from 2.9 to 8.4 GB; at 100,000 customers these forms took half the memory).
holdings as (

    select
        services.customer_key,
        {{ sorted_distinct_list('services.product_code', condition='services.is_active_at_cutoff') }}
            as current_products,
        {{ sorted_distinct_list('services.product_category', condition='services.is_active_at_cutoff') }}
            as current_categories,
        {{ sorted_distinct_list('services.product_code') }} as products_ever,
        {{ sorted_distinct_list('services.termination_reason') }} as termination_reasons_ever

    from services
    where not services.is_deleted_at_source
    group by services.customer_key

),

invoice_behaviour as (

    select
        invoices.customer_key,
        count(*) as invoices_total,
        count(*) filter (where invoices.is_paid_in_full) as invoices_paid,
        count(*) filter (where invoices.is_paid_late) as invoices_paid_late,
        avg(invoices.days_paid_after_due) filter (where invoices.is_paid_late) as avg_days_late,
        count(*) filter (where invoices.is_overdue) as invoices_overdue,
        max(invoices.invoice_date) as last_invoice_on

    from invoices
    where invoices.status <> 'credited'
    group by invoices.customer_key

),

payments_by_method as (

    select
        payments.customer_key,
        payments.payment_method,
        count(*) as payments,
        max(payments.paid_on) as last_payment_on

    from payments
    group by payments.customer_key, payments.payment_method

),

payment_habits as (

    select
        payments_by_method.customer_key,
        -- the most frequent method; on a tie the first in alphabetical order
        arg_min(
            payments_by_method.payment_method,
            (-payments_by_method.payments, payments_by_method.payment_method)
        ) filter (where payments_by_method.payment_method is not null) as usual_payment_method,
        max(payments_by_method.last_payment_on) as last_payment_on

    from payments_by_method
    group by payments_by_method.customer_key

),

final as (

    select
        customers.customer_key,
        customers.customer_type,
        customers.business_name,
        customers.language,
        customers.postal_area,
        customers.region,
        customers.age_band,
        customers.status,
        customers.first_service_on as customer_since,
        customers.last_service_on,
        customers.tenure_months,
        customers.active_services,
        customers.current_mrr,
        holdings.current_products,
        holdings.current_categories,
        holdings.products_ever,
        holdings.termination_reasons_ever,
        payment_habits.usual_payment_method,
        customers.has_einvoice_address,
        customers.overdue_amount,
        customers.lifetime_billed,
        customers.lifetime_paid,
        invoice_behaviour.last_invoice_on,
        payment_habits.last_payment_on,
        customers.collection_cases_total,
        cast(coalesce(invoice_behaviour.invoices_total, 0) as integer) as invoices_total,
        cast(coalesce(invoice_behaviour.invoices_paid_late, 0) as integer) as invoices_paid_late,
        cast(invoice_behaviour.avg_days_late as double) as avg_days_late,
        cast(coalesce(invoice_behaviour.invoices_overdue, 0) as integer) as invoices_overdue,
        cast(invoice_behaviour.invoices_paid_late as double)
        / nullif(invoice_behaviour.invoices_paid, 0) as share_paid_late,
        customers.collection_cases_open > 0 as has_open_collection_case

    from customers
    left join holdings on customers.customer_key = holdings.customer_key
    left join invoice_behaviour on customers.customer_key = invoice_behaviour.customer_key
    left join payment_habits on customers.customer_key = payment_habits.customer_key

)

select * from final
