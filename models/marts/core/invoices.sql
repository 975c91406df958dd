-- One row per invoice, keyed pseudonymously, with what was paid and when; no reference numbers.
-- Incremental by customer, as the vault tables it reads (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_key', 'changed_customers': 'services'},
    )
}}
with

invoices as (

    select * from {{ ref('int_invoices') }}
    where {{ is_changed('customer_id', 'int_invoices') }}

),

final as (

    select
        invoices.invoice_date,
        invoices.due_date,
        invoices.currency,
        invoices.status,
        invoices.first_paid_on,
        invoices.last_paid_on,
        invoices.is_paid_in_full,
        invoices.is_paid_late,
        invoices.is_overdue,
        cast(invoices.amount_excl_vat as decimal(14, 2)) as amount_excl_vat,
        cast(invoices.vat_amount as decimal(14, 2)) as vat_amount,
        cast(invoices.total_amount as decimal(14, 2)) as total_amount,
        cast(invoices.paid_amount as decimal(18, 2)) as paid_amount,
        cast(invoices.open_amount as decimal(18, 2)) as open_amount,
        cast(invoices.days_paid_after_due as integer) as days_paid_after_due,
        pseudonymous_key(invoices.invoice_id) as invoice_key,
        pseudonymous_key(invoices.customer_id) as customer_key

    from invoices

)

select * from final
