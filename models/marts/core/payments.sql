-- One row per payment, keyed pseudonymously and joinable on customer_key; no reference numbers.
-- Incremental by customer, as the vault tables it reads (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_key', 'changed_customers': 'services'},
    )
}}
with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where {{ is_changed('customer_id', 'stg_billing__invoices') }}

),

payments as (

    select * from {{ ref('stg_billing__payments') }}
    where {{ of_changed_invoices('stg_billing__payments', 'invoices') }}

),

final as (

    select
        payments.paid_on,
        payments.payment_method,
        invoices.due_date,
        cast(payments.amount as decimal(14, 2)) as amount,
        pseudonymous_key(payments.payment_id) as payment_key,
        pseudonymous_key(payments.invoice_id) as invoice_key,
        pseudonymous_key(invoices.customer_id) as customer_key,
        payments.paid_on > invoices.due_date as is_after_due_date

    from payments
    left join invoices on payments.invoice_id = invoices.invoice_id

)

select * from final
