-- Current invoices: the latest version of each invoice from the billing deltas.
-- A table, not a view: the billing deltas are the largest history, and every test and mart that read a
-- view recomputed the latest versions over all of it (retention enforcement drops it with what it erases).
-- Incremental: a build recomputes only the keys of files loaded since the last (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'invoice_id', 'delta_source': 'billing.invoices'},
    )
}}

with

invoices as (

    {{ current_rows(source('billing', 'invoices'), key='invoice_id', mode='delta') }}

),

final as (

    select
        {{ clean_string('invoice_id') }} as invoice_id,
        {{ clean_string('customer_id') }} as customer_id,
        invoice_date,
        due_date,
        {{ clean_code('reference_number', strip_spaces=true) }} as reference_number,
        amount_excl_vat,
        vat_amount,
        total_amount,
        {{ clean_code('currency') }} as currency,
        {{ clean_string('status') }} as status,
        updated_at,
        _load_id,
        _source_file,
        _line,
        _export_date

    from invoices

)

select * from final
