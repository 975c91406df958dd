{#-
    current_rows(source_relation, key, mode, updated_at='updated_at', files_relation=none, system=none,
                 entity=none)

    The current state of one source entity from its raw table in the vault.

    mode='snapshot': the raw table holds versions (slowly changing dimension type 2, kept by the ingest:
        ingest/versions.py, core/schema.py VERSION_COLUMNS), one per key and change, in effect for the
        newest version of each file name and the newest file of each export date. Per key its latest version
        (`_is_latest`, so no window over history): current (`_valid_to` null) -> is_deleted_at_source = false
        and deleted_at_source_on = null; closed -> the key vanished from the snapshots,
        is_deleted_at_source = true and deleted_at_source_on = `_valid_to`, the export date of the first
        snapshot it was missing from (a row the ingest rejected is unreadable there, not deleted). Lineage
        is of the file that introduced the version.
    mode='delta': the raw table holds every row of every file version. Only the newest loaded version of
        each `source_file` counts (a corrected file under the same name supersedes the earlier versions;
        refused versions never count); per key the latest version by `updated_at` desc, then `_load_id`
        desc, then `_line` desc. In an incremental model only the keys to recompute
        (macros/incremental/changes.sql).

    Either mode: rows whose key is null/blank are dropped (the ingest rejects them already), and if a key
    occurs twice in one file the later line wins, so the result is unique on the (trimmed) key.

    Arguments:
        source_relation  the raw table, i.e. source('<system>', '<entity>')
        key              key column name, or list of names for a composite key
        mode             'snapshot' | 'delta' (as in ingest/sources/<system>/<entity>.yml)
        updated_at       delta only: the column that orders versions of a key
        files_relation   delta only: the ingest file register; default source('ingest', 'files')
        system, entity   delta only: the ingest.files system/entity of this table; default derived from
                         the relation: schema `raw_<system>`, table `<entity>`

    Returns a complete query (to be wrapped in an import CTE): every raw column, the lineage columns
    `_load_id`, `_source_file`, `_line`, `_export_date`, and for snapshots `is_deleted_at_source`,
    `deleted_at_source_on`.
-#}
{% macro current_rows(source_relation, key, mode, updated_at='updated_at', files_relation=none, system=none,
                      entity=none) -%}
    {%- if mode not in ('snapshot', 'delta') -%}
        {{ exceptions.raise_compiler_error(
            "current_rows: mode must be 'snapshot' or 'delta', got '" ~ mode ~ "'"
        ) }}
    {%- endif -%}
    {%- set keys = [key] if key is string else key -%}
    {%- set key_exprs = key_expressions(keys, 'source_rows') %}
    {%- if mode == 'snapshot' -%}
    {{ require_versions(source_relation) }}
    with

    current_rows as (
        -- per key its latest version: current, or its last one before it vanished from the snapshots
        select
            source_rows.* exclude (_row_hash, _valid_from, _valid_to, _ended_load_id, _is_latest),
            source_rows._valid_to is not null as is_deleted_at_source,
            source_rows._valid_to as deleted_at_source_on
        from {{ source_relation }} as source_rows
        where
            source_rows._is_latest
            {% for expr in key_exprs -%}
            and {{ expr }} is not null
            {% endfor %}
    )
    {%- else -%}
    {%- set files_relation = files_relation if files_relation is not none else source('ingest', 'files') -%}
    {%- set system = system if system is not none else (source_relation.schema | replace('raw_', '', 1)) -%}
    {%- set entity = entity if entity is not none else source_relation.identifier %}
    with

    current_file_versions as (
        -- newest loaded version of each source file: it supersedes earlier versions of the same name
        select
            load_id,
            export_date
        from {{ files_relation }}
        where
            system = '{{ system }}'
            and entity = '{{ entity }}'
            and status = 'loaded'
        qualify row_number() over (partition by source_file order by load_id desc) = 1
    ),

    current_rows as (
        -- per key its newest version
        select source_rows.*
        from {{ source_relation }} as source_rows
        where
            source_rows._load_id in (select current_file_versions.load_id from current_file_versions)
            and {{ is_changed(keys, 'source_rows') }}
            {% for expr in key_exprs -%}
            and {{ expr }} is not null
            {% endfor %}
        qualify row_number() over (
            partition by {{ key_exprs | join(', ') }}
            order by
                source_rows.{{ adapter.quote(updated_at) }} desc nulls last,
                source_rows._load_id desc,
                source_rows._line desc
        ) = 1
    )
    {%- endif %}

    select * from current_rows
{%- endmacro %}

{#-
    require_versions(source_relation): a snapshot entity's raw table must hold versions. One still holding
    every snapshot's rows (a vault of before, not yet migrated) fails the build naming the table and what to
    do, instead of an unknown column in every model that reads it.
-#}
{% macro require_versions(source_relation) -%}
    {%- if execute -%}
        {%- set relation = adapter.get_relation(
            source_relation.database, source_relation.schema, source_relation.identifier) -%}
        {%- if relation is not none
              and '_is_latest' not in (adapter.get_columns_in_relation(relation) | map(attribute='name') | list) -%}
            {{ exceptions.raise_compiler_error(
                source_relation ~ " holds every snapshot's rows (the layout before versions): run `warehouse "
                ~ "ingest`, which migrates it once, then build"
            ) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#-
    superseded_rows(source_relation, key): the versions of a snapshot entity that a later snapshot superseded
    (closed, and not the key's latest: the current version, or the last one of a record deleted at the source,
    is the entity's current row). Per version its cleaned key and customer, the day it came (`valid_from`, part
    of its record id: core/erasure.py version_record_id) and the day it was superseded (`superseded_on`).
-#}
{% macro superseded_rows(source_relation, key) -%}
    {{ require_versions(source_relation) }}
    select
        {{ clean_string('versions.' ~ key) }} as {{ key }},
        {% if key != 'customer_id' -%}
        {{ clean_string('versions.customer_id') }} as customer_id,
        {% endif -%}
        versions._valid_from as valid_from,
        versions._valid_to as superseded_on
    from {{ source_relation }} as versions
    where
        versions._valid_to is not null
        and not versions._is_latest
        and {{ clean_string('versions.' ~ key) }} is not null
{%- endmacro %}
