-- Current payments: the latest version of each payment from the billing deltas.
-- A table, not a view: the billing deltas are the largest history, and every test and mart that read a
-- view recomputed the latest versions over all of it (retention enforcement drops it with what it erases).
-- Incremental: a build recomputes only the keys of files loaded since the last (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'payment_id', 'delta_source': 'billing.payments'},
    )
}}

with

payments as (

    {{ current_rows(source('billing', 'payments'), key='payment_id', mode='delta') }}

),

final as (

    select
        {{ clean_string('payment_id') }} as payment_id,
        {{ clean_string('invoice_id') }} as invoice_id,
        paid_on,
        amount,
        {{ clean_string('method') }} as payment_method,
        {{ clean_code('reference_number', strip_spaces=true) }} as reference_number,
        updated_at,
        _load_id,
        _source_file,
        _line,
        _export_date

    from payments

)

select * from final
