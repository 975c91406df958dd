-- Current data-centre key handovers: the latest snapshot, plus handovers since deleted at the source
-- (flagged). The holder's name and phone are personal data disclosed to the access-control operator.
with

key_handovers as (

    {{ current_rows(source('services', 'key_handovers'), key='handover_id', mode='snapshot') }}

),

cleaned as (

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

),

-- corrections recorded by `warehouse rectify` (GDPR art. 16), applied while the export still carries the
-- value they correct
rectified as (

    {{ apply_rectifications(
        'cleaned', 'staging.stg_services__key_handovers', key='handover_id',
        companions={'holder_phone': 'holder_phone_raw'}
    ) }}

),

final as (

    select
        rectified.handover_id,
        rectified.customer_id,
        rectified.site_code,
        rectified.key_id,
        rectified.holder_first_name,
        rectified.holder_last_name,
        rectified.holder_phone,
        rectified.holder_phone_raw,
        rectified.signed_out_on,
        rectified.returned_on,
        rectified.disclosed_to,
        rectified.disclosed_on,
        rectified.is_deleted_at_source,
        rectified.deleted_at_source_on,
        rectified._load_id,
        rectified._source_file,
        rectified._line,
        rectified._export_date,
        rectified.rectified_columns

    from rectified

)

select * from final
