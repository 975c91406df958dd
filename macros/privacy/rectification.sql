{#-
    Rectification (GDPR art. 16): corrections recorded by `warehouse rectify` in the vault table
    privacy.rectifications are applied in staging, on top of the exports.
-#}

{#-
    rectifiable_columns(dataset): the data map's `rectifiable` columns of a staging model
    (privacy/data_map.yml). dbt's Jinja cannot read that file, so they are listed here;
    tests/test_rectify.py fails when this list and the data map differ.
-#}
{% macro rectifiable_columns(dataset) -%}
    {%- set rectifiable = {
        'staging.stg_crm__customers': [
            'first_name', 'last_name', 'company_name', 'email', 'phone', 'street_address', 'postal_code',
            'city', 'country_code', 'billing_street_address', 'billing_postal_code', 'billing_city',
            'billing_country_code', 'einvoice_address', 'language_code',
        ],
        'staging.stg_services__key_handovers': ['holder_first_name', 'holder_last_name', 'holder_phone'],
    } -%}
    {{ return(rectifiable.get(dataset, [])) }}
{%- endmacro %}

{#-
    apply_rectifications(relation, dataset, key, subject='customer_id', companions={})

    The rows of `relation` (a CTE of cleaned staging rows, unique on `key`) with every rectifiable column
    replaced by the latest correction recorded for it while the export still carries the value the
    correction corrected (`source_value`): a later fix or change at the source wins. A correction applies to
    the rows of its customer (`subject`), or to one row when it names `record_id`. Adds
    `rectified_columns`: the columns of the row that carry a correction (empty list if none).
    `companions` maps a rectifiable column to a column that copies its export value (`phone` ->
    `phone_raw`, the number as typed): the companion takes the corrected value too, so the old one is gone.

    Returns a complete query (to be wrapped in a CTE).
-#}
{% macro apply_rectifications(relation, dataset, key, subject='customer_id', companions={}) -%}
    {%- set columns = rectifiable_columns(dataset) -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error(
            "apply_rectifications: " ~ dataset ~ " has no rectifiable columns in rectifiable_columns()"
        ) }}
    {%- endif %}
    {#- (column replaced, rectifiable column whose correction it takes) -#}
    {%- set replaced = [] -%}
    {%- for column in columns -%}
        {%- do replaced.append((column, column)) -%}
        {%- if column in companions -%}
            {%- do replaced.append((companions[column], column)) -%}
        {%- endif -%}
    {%- endfor %}
    with

    rectifications as (
        select * from {{ source('privacy', 'rectifications') }}
        where
            dataset = '{{ dataset }}'
            and column_name in ('{{ columns | join("', '") }}')
    ),

    applicable as (
        -- per row and column the latest correction recorded while the export carried the value it corrects
        select
            {{ relation }}.{{ key }} as row_key,
            rectifications.column_name,
            rectifications.new_value
        from {{ relation }}
        inner join rectifications
            on
                {{ relation }}.{{ subject }} = rectifications.customer_id
                and (
                    rectifications.record_id is null
                    or rectifications.record_id = cast({{ relation }}.{{ key }} as varchar)
                )
                and rectifications.source_value is not distinct from case rectifications.column_name
                    {%- for column in columns %}
                    when '{{ column }}' then cast({{ relation }}.{{ column }} as varchar)
                    {%- endfor %}
                end
        qualify row_number() over (
            partition by {{ relation }}.{{ key }}, rectifications.column_name
            order by rectifications.id desc
        ) = 1
    ),

    corrections as (
        select
            row_key,
            list(column_name order by column_name) as rectified_columns,
            {%- for column in columns %}
            max(new_value) filter (where column_name = '{{ column }}') as {{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from applicable
        group by row_key
    ),

    rectified as (
        select
            {{ relation }}.* replace (
                {%- for target, column in replaced %}
                case
                    when list_contains(corrections.rectified_columns, '{{ column }}') then corrections.{{ column }}
                    else {{ relation }}.{{ target }}
                end as {{ target }}{{ ',' if not loop.last }}
                {%- endfor %}
            ),
            coalesce(corrections.rectified_columns, cast([] as varchar [])) as rectified_columns
        from {{ relation }}
        left join corrections on {{ relation }}.{{ key }} = corrections.row_key
    )

    select * from rectified
{%- endmacro %}
