-- Invoices with what was paid on them and when, judged on the data cut-off date: paid in full, paid
-- late (the payment completing it came after the due date), overdue (unpaid balance past due).
-- Personal data in clear: the ids.
-- A table: several marts and tests read it (each recomputation re-reads every invoice and payment version).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_id', 'changed_customers': 'services'},
    )
}}

with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where {{ is_changed('customer_id', 'stg_billing__invoices') }}

),

payments as (

    select * from {{ ref('stg_billing__payments') }}
    where {{ of_changed_invoices('stg_billing__payments', 'invoices', with_orphans=false) }}

),

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

paid as (

    select
        payments.invoice_id,
        sum(payments.amount) as paid_amount,
        count(*) as payments,
        min(payments.paid_on) as first_paid_on,
        max(payments.paid_on) as last_paid_on

    from payments
    group by payments.invoice_id

),

final as (

    select
        invoices.invoice_id,
        invoices.customer_id,
        invoices.invoice_date,
        invoices.due_date,
        invoices.amount_excl_vat,
        invoices.vat_amount,
        invoices.total_amount,
        invoices.currency,
        invoices.status,
        paid.first_paid_on,
        paid.last_paid_on,
        coalesce(paid.paid_amount, 0) as paid_amount,
        coalesce(paid.payments, 0) as payments,
        case
            when invoices.status in ('credited', 'written_off') then 0
            else greatest(coalesce(invoices.total_amount, 0) - coalesce(paid.paid_amount, 0), 0)
        end as open_amount,
        coalesce(paid.paid_amount, 0) >= invoices.total_amount as is_paid_in_full,
        case
            when coalesce(paid.paid_amount, 0) >= invoices.total_amount
                then paid.last_paid_on > invoices.due_date
        end as is_paid_late,
        case
            when coalesce(paid.paid_amount, 0) >= invoices.total_amount
                then greatest(date_diff('day', invoices.due_date, paid.last_paid_on), 0)
        end as days_paid_after_due,
        invoices.status not in ('credited', 'written_off')
        and coalesce(paid.paid_amount, 0) < invoices.total_amount
        and invoices.due_date < data_cutoff.cutoff_date as is_overdue

    from invoices
    left join paid on invoices.invoice_id = paid.invoice_id
    cross join data_cutoff

)

select * from final
