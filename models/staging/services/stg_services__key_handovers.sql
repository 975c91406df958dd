-- Current data-centre key handovers: the latest snapshot, plus handovers since deleted at the source
-- (flagged). The holder's name and phone are personal data disclosed to the access-control operator.
with

key_handovers as (

    {{ current_rows(source('services', 'key_handovers'), key='handover_id', mode='snapshot') }}

),

final as (

    select
        {{ clean_string('handover_id') }} as handover_id,
        {{ clean_string('customer_id') }} as customer_id,
        {{ clean_code('site') }} as site_code,
        {{ clean_string('key_id') }} as key_id,
        {{ clean_string('holder_first_name') }} as holder_first_name,
        {{ clean_string('holder_last_name') }} as holder_last_name,
        {{ normalise_phone_fi('holder_phone') }} as holder_phone,
        holder_phone as holder_phone_raw,
        signed_out_on,
        returned_on,
        {{ clean_string('disclosed_to') }} as disclosed_to,
        disclosed_on,
        is_deleted_at_source,
        deleted_at_source_on,
        _load_id,
        _source_file,
        _line,
        _export_date

    from key_handovers

)

select * from final
