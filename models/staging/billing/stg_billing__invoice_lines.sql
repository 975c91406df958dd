-- Current invoice lines: the latest version of each (invoice_id, line_no) from the billing deltas.
-- A table, not a view: the billing deltas are the largest history, and every test and mart that read a
-- view recomputed the latest versions over all of it (retention enforcement drops it with what it erases).
-- Incremental: a build recomputes only the keys of files loaded since the last (macros/incremental).
{{
    config(
        materialized='incremental',
        meta={'partition_key': ['invoice_id', 'line_no'], 'delta_source': 'billing.invoice_lines'},
    )
}}

with

invoice_lines as (

    {{ current_rows(source('billing', 'invoice_lines'), key=['invoice_id', 'line_no'], mode='delta') }}

),

final as (

    select
        {{ clean_string('invoice_id') }} as invoice_id,
        line_no,
        {{ clean_string('service_id') }} as service_id,
        {{ clean_string('description') }} as description,
        period_start,
        period_end,
        quantity,
        unit_price,
        amount_excl_vat,
        vat_rate as vat_rate_percent,
        updated_at,
        _load_id,
        _source_file,
        _line,
        _export_date

    from invoice_lines

)

select * from final
