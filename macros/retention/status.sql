{#-
    The retention status of a record on the audit date: `on_hold` if a legal hold applies to its customer,
    else `kept` while no clock runs, `overdue` past expires_on, `due_soon` within due_soon_days of it, else
    `kept`. One definition for the vault's int_retention__records and the mart's daily refresh.
-#}
{% macro retention_status(expires_on, hold_reason, as_of_date, due_soon_days) -%}
    case
        when {{ hold_reason }} is not null then 'on_hold'
        when {{ expires_on }} is null then 'kept'
        when {{ as_of_date }} > {{ expires_on }} then 'overdue'
        when {{ expires_on }} - {{ as_of_date }} <= {{ due_soon_days }} then 'due_soon'
        else 'kept'
    end
{%- endmacro %}

{#- Days from expires_on to the audit date when past expiry, else null. -#}
{% macro days_past_expiry(expires_on, as_of_date) -%}
    case when {{ as_of_date }} > {{ expires_on }} then {{ as_of_date }} - {{ expires_on }} end
{%- endmacro %}

{#-
    Post-hook of privacy.retention_status: an incremental build recomputed the changed customers' records;
    every other record keeps its expiry, but its status moves with the audit date.
-#}
{% macro refresh_retention_status() -%}
    {#- refs outside the condition: dbt finds a model's dependencies by rendering it once, not incrementally -#}
    {%- set audit_date_relation, rules_relation = ref('int_retention__audit_date'), ref('int_retention__rules') -%}
    {%- if is_incremental() -%}
        update {{ this }} as status_rows
        set
            status = {{ retention_status('status_rows.expires_on', 'status_rows.hold_reason',
                                        'audit_date.as_of_date', 'policy.due_soon_days') }},
            days_past_expiry = cast({{ days_past_expiry('status_rows.expires_on', 'audit_date.as_of_date') }} as integer),
            as_of_date = audit_date.as_of_date
        from
            {{ audit_date_relation }} as audit_date,
            (
                select cast(any_value(rules.due_soon_days) as integer) as due_soon_days
                from {{ rules_relation }} as rules
            ) as policy
        where status_rows.as_of_date is distinct from audit_date.as_of_date
    {%- endif -%}
{%- endmacro %}
