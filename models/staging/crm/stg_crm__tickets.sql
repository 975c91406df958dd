-- Current customer-service tickets: the latest version of each ticket from the CRM deltas. `messages`
-- stays JSON here; stg_crm__ticket_messages has one row per message. Free text may hold personal data.
with

tickets as (

    {{ current_rows(source('crm', 'tickets'), key='ticket_id', mode='delta') }}

),

final as (

    select
        {{ clean_string('ticket_id') }} as ticket_id,
        {{ clean_string('customer_id') }} as customer_id,
        opened_at,
        closed_at,
        {{ clean_string('channel') }} as channel,
        {{ clean_string('subject') }} as subject,
        messages,
        coalesce(json_array_length(messages), 0) as message_count,
        updated_at,
        _load_id,
        _source_file,
        _line,
        _export_date

    from tickets

)

select * from final
