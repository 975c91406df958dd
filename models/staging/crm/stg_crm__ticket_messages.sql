-- One row per message of the current version of each ticket (unnested from the ticket's `messages` JSON
-- array, in array order). Message bodies are free text and may hold personal data.
with

tickets as (

    {{ current_rows(source('crm', 'tickets'), key='ticket_id', mode='delta') }}

),

messages as (

    select
        ticket_id,
        _load_id,
        _source_file,
        _line,
        unnest(
            from_json(messages, '[{"sent_at": "VARCHAR", "direction": "VARCHAR", "body": "VARCHAR"}]')
        ) as message,
        generate_subscripts(
            from_json(messages, '[{"sent_at": "VARCHAR", "direction": "VARCHAR", "body": "VARCHAR"}]'), 1
        ) as message_no

    from tickets

),

final as (

    select
        {{ clean_string('ticket_id') }} as ticket_id,
        cast(message_no as integer) as message_no,
        try_cast(struct_extract(message, 'sent_at') as timestamptz) as sent_at,
        {{ clean_string("struct_extract(message, 'direction')") }} as direction,
        {{ clean_string("struct_extract(message, 'body')") }} as body,
        _load_id,
        _source_file,
        _line

    from messages

)

select * from final
