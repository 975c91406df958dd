-- The customers whose rows may have changed since the oldest previous build of the customer-partitioned
-- incremental models that read this one (its consumers; macros/incremental/changed_customers.sql): computed
-- once per build rather than by each of them. Empty in a full build, where every consumer is built whole.
-- Its state records the load it counted from (as the fingerprint), so a consumer can tell whether the set
-- covers the loads since its own previous build. Personal data in clear: the ids.
{{
    config(
        materialized='table',
        post_hook="{{ remember_build('select ' ~ (oldest_consumer_build() or 'null')) }}",
    )
}}
{%- set since = oldest_consumer_build() %}

with

changed as (

    {#- parsing (not execute) renders the query too, for dbt to see its refs -#}
    {% if since or not execute -%}
        {{ changed_customers(since or '-1') }}
    {%- else -%}
        select cast(null as varchar) as customer_id
        where false
    {%- endif %}

),

final as (

    select changed.customer_id
    from changed
    where changed.customer_id is not null

)

select * from final
