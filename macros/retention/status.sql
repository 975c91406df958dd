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
    Kept rows of privacy.retention_status in an incremental build (forget_changes' refresh): the changed
    customers' records are recomputed; every other record keeps its expiry, but its status moves with the
    audit date. A select list: the rows are rewritten rather than updated in place (an UPDATE of every row
    keeps their old values in memory until the database is closed).
-#}
{% macro refreshed_retention_status() -%}
    {%- set as_of_date = '(select audit_date.as_of_date from ' ~ ref('int_retention__audit_date') ~ ' as audit_date)' -%}
    {%- set due_soon_days = '(select cast(any_value(rules.due_soon_days) as integer) from '
        ~ ref('int_retention__rules') ~ ' as rules)' -%}
    * replace (
        {{ retention_status('expires_on', 'hold_reason', as_of_date, due_soon_days) }} as status,
        cast({{ days_past_expiry('expires_on', as_of_date) }} as integer) as days_past_expiry,
        {{ as_of_date }} as as_of_date
    )
{%- endmacro %}
