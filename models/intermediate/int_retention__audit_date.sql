-- The retention audit date: the data cut-off, i.e. the newest export date the ingest loaded (the state of
-- the operational systems the warehouse knows), unless the var `retention_as_of` (YYYY-MM-DD) is given.
{%- set as_of = var('retention_as_of', none) %}
with

files as (

    select * from {{ source('ingest', 'files') }}

),

final as (

    select
        {% if as_of -%}
            cast('{{ as_of }}' as date)
        {%- else -%}
            max(files.export_date)
        {%- endif %} as as_of_date

    from files
    where files.status = 'loaded'

)

select * from final
