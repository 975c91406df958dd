{#-
    The hooks of every incremental model, set once for the project in dbt_project.yml: the pre-hook removes the
    rows of the keys to recompute (forget_changes, macros/incremental/changes.sql), the model recomputes those
    keys (is_changed), the post-hook records the build (remember_build). What differs between the models is
    in each one's config `meta` (documented in macros/_macros.yml):

        partition_key      the key column(s) whose rows are recomputed together: a delta entity's record key,
                           or customer_id; customer_key (the marts) is the pseudonymous key of customer_id
        delta_source       a staging table of a delta entity, 'system.entity': the keys to recompute are
                           those the entity's files loaded since the model's previous build list
        changed_customers  a customer-partitioned model: which changed-customer set it takes, `services` or
                           `retention` (changed_customer_set, macros/incremental/changed_customers.sql)
        refresh_kept_rows  optional: the macro whose select list rewrites the kept rows too (retention status)

    For every other model the hooks render nothing.
-#}

{% macro incremental_pre_hook() -%}
    {%- set meta = incremental_meta() -%}
    {%- if meta -%}
        {%- set keys = meta.partition_key -%}
        {%- if meta.delta_source -%}
            {%- set changes = changed_delta_keys(source(*meta.delta_source.split('.')), keys) -%}
        {%- else -%}
            {%- set customers = changed_customer_set(meta.changed_customers) -%}
            {%- set changes = consumer_changes(customers.all_customers, customers.fingerprint) -%}
        {%- endif -%}
        {#- context[name]: the macro of that name, from dbt's Jinja context -#}
        {{ forget_changes(
            keys, changes, pseudonymised=keys == 'customer_key',
            refresh=context[meta.refresh_kept_rows]() if meta.refresh_kept_rows else none,
        ) }}
    {%- endif -%}
{%- endmacro %}

{% macro incremental_post_hook() -%}
    {%- set meta = incremental_meta() -%}
    {%- if meta -%}
        {{ remember_build(
            changed_customer_set(meta.changed_customers).fingerprint if meta.changed_customers else 'select null'
        ) }}
    {%- endif -%}
{%- endmacro %}

{#-
    The model's `meta` when it is an incremental model, checked: a partition key, and either a delta source or
    a changed-customer set. None for every other model.

    dbt learns what the hooks read (their refs) by rendering them while it parses; with the model's own
    config(), and so its meta, only when it applies the model's entry in a models YAML file that has a
    `config:` (as every model's here: `meta: contains_personal_data`). Without one it would not know that a
    customer-partitioned model reads int_changed_customers, and the build says so here.
-#}
{% macro incremental_meta() -%}
    {%- if model.config.materialized != 'incremental' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set meta = model.config.get('meta', {}) -%}
    {%- if not meta.partition_key or (meta.delta_source is defined) == (meta.changed_customers is defined) -%}
        {{ exceptions.raise_compiler_error(
            "an incremental model names its partition_key and either a delta_source or its changed_customers "
            ~ "in its meta (macros/incremental/hooks.sql)") }}
    {%- endif -%}
    {%- set changed = 'model.' ~ project_name ~ '.int_changed_customers' -%}
    {%- if execute and meta.changed_customers and changed not in model.depends_on.nodes -%}
        {{ exceptions.raise_compiler_error(
            "dbt does not know that the hooks of this model read int_changed_customers: give its entry in a "
            ~ "models YAML file a `config:` block (macros/incremental/hooks.sql, incremental_meta)") }}
    {%- endif -%}
    {{ return(meta) }}
{%- endmacro %}
