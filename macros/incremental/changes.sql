{#-
    Incremental builds of the large tables: what changed since the model was last built, and the bookkeeping.

    An incremental model names its partition key (the record key of a staging table, or `customer_id`) and
    a query for the keys whose rows may have changed since its last build. Its pre-hook
    (`forget_changes`) keeps that key set in a temp table and deletes their rows; the model recomputes only
    those keys from the full history and is appended. Over-including a key costs time, never correctness: a
    key's rows are always recomputed whole. Its post-hook (`remember_build`) records in
    `intermediate.incremental_state` the newest load the build saw, and a fingerprint of whatever else the
    model's rows depend on (policy, cut-off month): a different fingerprint recomputes every key.

    The state lives in the vault's intermediate schema, so retention enforcement, which drops the derived
    tables there when it erases, also drops the state: the next build is a full one.
-#}

{#-
    Where a model's state is kept: beside its table. The vault's in its intermediate schema; the analytics
    database's in its own `build_state` schema, so that it is published, or discarded, with the marts.
-#}
{% macro incremental_state_relation(database=none) -%}
    {%- set database = database or this.database -%}
    {%- if database == target.database -%}
        {{ database }}.intermediate.incremental_state
    {%- else -%}
        {{ database }}.build_state.incremental_state
    {%- endif -%}
{%- endmacro %}

{#- on-run-start: the state table, created once before the models run in parallel. -#}
{% macro create_incremental_state() -%}
    {%- for database in [target.database, 'analytics'] -%}
        {%- set relation = incremental_state_relation(database) -%}
        create schema if not exists {{ relation.rsplit('.', 1)[0] }};
        create table if not exists {{ relation }} (
            model varchar primary key,
            load_id bigint,
            fingerprint varchar,
            recomputed_keys bigint,
            built_at timestamp
        );
        {#- described in the database like the models (persist_docs) -#}
        {%- for column, comment in [
            (none, 'Bookkeeping of the incremental models, one row per model: what its previous build saw '
                ~ '(macros/incremental/changes.sql, remember_build).'),
            ('model', 'The model (the name of its table).'),
            ('load_id', 'The newest ingest.files.load_id its previous build saw: later files are new to it.'),
            ('fingerprint', 'What its rows depended on besides the data then (cut-off month, retention rules, '
                ~ 'erasures, pseudonym key): a different one recomputes every key.'),
            ('recomputed_keys', 'How many keys that build recomputed; null: all of them, a full build.'),
            ('built_at', 'When that build ran (local time).'),
        ] %}
        comment on {{ 'column ' ~ relation ~ '.' ~ column if column else 'table ' ~ relation }}
        is '{{ comment | replace("'", "''") }}';
        {%- endfor %}
    {% endfor -%}
{%- endmacro %}

{#-
    The newest load_id the previous build of a model saw (-1: none recorded, so everything is new); by
    default of this model, else of `model` (a graph node).
-#}
{% macro previous_load_id(model=none) -%}
    (
        select coalesce(max(incremental_state.load_id), -1)
        from {{ incremental_state_relation(model.database if model else none) }} as incremental_state
        where incremental_state.model = '{{ model.alias if model else this.identifier }}'
    )
{%- endmacro %}

{#- The fingerprint recorded by the previous build of this model (null: none). -#}
{% macro previous_fingerprint() -%}
    (
        select any_value(incremental_state.fingerprint)
        from {{ incremental_state_relation() }} as incremental_state
        where incremental_state.model = '{{ this.identifier }}'
    )
{%- endmacro %}

{#- The temp table of the keys this incremental run recomputes (per model: dbt runs models in parallel). -#}
{% macro changes_relation() -%}
    temp.main.changes__{{ this.identifier }}
{%- endmacro %}

{#-
    Pre-hook: keep the keys `changes_query` returns in changes_relation(), and remove their rows (and those
    without a key, see is_changed).
    keys: the partition key column(s) of the table, compared as `key_expressions` writes them (trimmed
    varchar), the form `changed_delta_keys` and `changed_customers` return; with pseudonymised=true the
    table's key is `customer_key`, the pseudonymous key of the changed customer_id (a mart).
    refresh: a select list over the kept rows (`* replace (...)`) when they change too (retention status
    moves with the audit date); the kept rows are then always rewritten.

    Remove, not always delete: DuckDB 1.5 keeps 16 KiB of delete markers for every 2,048-row vector a DELETE
    touches, pinned in memory until the database is closed (a checkpoint does not free them), and loaded
    again, pinned, by every later read of the table: they stay in the file until the vector is rewritten. A
    day's changed customers are scattered over every vector of a customer-partitioned table, so deleting them
    pinned 8 bytes per row of every such table (at a million customers the daily build ran out of memory).
    When the vectors with deletes, those of earlier builds and those this one would touch, would pin more
    than the var `incremental_delete_budget_mb` (64 MB), the kept rows go to a new table with the same
    definition that replaces the old one: no markers, and the old table's memory is freed.
-#}
{% macro forget_changes(keys, changes_query, pseudonymised=false, refresh=none) -%}
    {%- if is_incremental() -%}
        {%- set keys = [keys] if keys is string else keys -%}
        {%- set changed_rows -%}
            {% if pseudonymised -%}
            {{ keys[0] }} in (select pseudonymous_key(changes.customer_id) from {{ changes_relation() }} as changes)
            {%- else -%}
            -- the table's keys are clean already: a cast is enough to compare them
            ({% for k in keys %}cast({{ k }} as varchar){{ ', ' if not loop.last }}{% endfor %})
            in (select * from {{ changes_relation() }})
            {%- endif %}
            or {{ keys[0] }} is null
        {%- endset -%}
        {%- do run_query('create or replace temp table changes__' ~ this.identifier ~ ' as ' ~ changes_query) -%}
        {#- a vector with fewer than 2,048 rows, but the last, has deletes already -#}
        {%- set over_budget -%}
            select count(*) * 16 / 1024 > {{ var('incremental_delete_budget_mb', 64) }}
            from (
                select rowid // 2048 as vector
                from {{ this }}
                group by vector
                having
                    (count(*) < 2048 and vector < (select max(rowid) // 2048 from {{ this }}))
                    or bool_or({{ changed_rows }})
            ) as marked
        {%- endset -%}
        {%- if refresh is none and not holds(over_budget) -%}
        delete from {{ this }}
        where {{ changed_rows }}
        {%- else -%}
        {%- set kept = this.incorporate(path={'identifier': this.identifier ~ '__kept'}) -%}
        {%- set definition = run_query(
            "select sql from duckdb_tables() where database_name = '" ~ this.database ~ "' and schema_name = '"
            ~ this.schema ~ "' and table_name = '" ~ this.identifier ~ "'").columns[0].values()[0] -%}
        drop table if exists {{ kept }};
        -- the same columns and constraints: the table's own definition, under the new name
        create table {{ kept }} {{ definition[definition.index('('):] }}
        insert into {{ kept }}
        select {{ refresh or '*' }}
        from {{ this }}
        where ({{ changed_rows }}) is not true;
        drop table {{ this }};
        alter table {{ kept }} rename to {{ this.identifier }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#-
    Post-hook: record the newest load and the fingerprint (a query of one value) this build saw, and how many
    keys it recomputed (null: all, a full build).
-#}
{% macro remember_build(fingerprint='select null') -%}
    insert or replace into {{ incremental_state_relation() }}
    select
        '{{ this.identifier }}',
        (select max(files.load_id) from {{ source('ingest', 'files') }} as files),
        ({{ fingerprint }}),
        {{ "(select count(*) from " ~ changes_relation() ~ ")" if is_incremental() else "null" }},
        current_localtimestamp()
{%- endmacro %}

{#-
    Model filter: this key is one to recompute (always true in a full build). Rows without a key (a defect
    of the source, few) are always recomputed: no key set can name them.
-#}
{% macro is_changed(keys, relation_alias) -%}
    {%- if is_incremental() -%}
        {%- set keys = [keys] if keys is string else keys -%}
        {%- set exprs = key_expressions(keys, relation_alias) -%}
        (({{ exprs | join(', ') }}) in (select * from {{ changes_relation() }}) or {{ exprs[0] }} is null)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The key columns as the staging models compare them: trimmed varchar, empty -> null. -#}
{% macro key_expressions(keys, relation_alias=none) -%}
    {%- set prefix = relation_alias ~ "." if relation_alias else "" -%}
    {%- set exprs = [] -%}
    {%- for k in keys -%}
        {%- do exprs.append(clean_string("cast(" ~ prefix ~ adapter.quote(k) ~ " as varchar)")) -%}
    {%- endfor -%}
    {{ return(exprs) }}
{%- endmacro %}

{#-
    The files of one source entity loaded (or refused) after the previous build: every version of them, so
    that the rows a corrected file withdrew are recomputed too.
-#}
{% macro touched_files(system, entity, since=none) -%}
    select files.source_file
    from {{ source('ingest', 'files') }} as files
    where
        files.system = '{{ system }}'
        and files.entity = '{{ entity }}'
        and files.load_id > {{ since or previous_load_id() }}
{%- endmacro %}

{#-
    Keys of a delta entity that any touched file lists, in any version (key_expressions form). since: the
    load after which files count as touched (an SQL expression; default: this model's previous build).
-#}
{% macro changed_delta_keys(source_relation, keys, since=none) -%}
    {%- set keys = [keys] if keys is string else keys -%}
    select distinct {{ key_expressions(keys, 'source_rows') | join(', ') }}
    from {{ source_relation }} as source_rows
    where source_rows._source_file in (
        {{ touched_files(source_relation.schema | replace('raw_', '', 1), source_relation.identifier, since) }}
    )
{%- endmacro %}
