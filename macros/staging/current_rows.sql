{#-
    current_rows(source_relation, key, mode, updated_at='updated_at', files_relation=none, system=none,
                 entity=none)

    The current state of one source entity, computed from the raw history the ingest appends to
    `raw_<system>.<entity>` (every file version, every snapshot, every delta).

    Both modes first keep only the rows of the *current version* of each source file: a corrected file
    that arrives under the same `source_file` name gets a new load_id and supersedes every earlier
    version of that name, so per `source_file` only the newest `loaded` version in `ingest.files` counts
    (refused versions never count and never supersede).

    mode='snapshot': each export date is one full snapshot (if two current file versions share an export
        date, the newest load_id is that date's snapshot; a file version with no loaded rows is treated
        as a failed export, not as "every row was deleted"). Per key, the row of its last appearance is
        returned: present in the latest snapshot -> is_deleted_at_source = false and
        deleted_at_source_on = null; otherwise is_deleted_at_source = true and deleted_at_source_on = the
        export date of the first snapshot after its last appearance (the first one it was missing from).
    mode='delta': per key the latest version by `updated_at` desc, then `_load_id` desc, then `_line` desc.
        In an incremental model only the keys to recompute (macros/incremental/changes.sql).

    Either mode: rows whose key is null/blank are dropped (the ingest rejects them already), and if a key
    occurs twice in one file the later line wins, so the result is unique on the (trimmed) key.

    Arguments:
        source_relation  the raw table, i.e. source('<system>', '<entity>')
        key              key column name, or list of names for a composite key
        mode             'snapshot' | 'delta' (as in ingest/sources/<system>/<entity>.yml)
        updated_at       delta only: the column that orders versions of a key
        files_relation   the ingest file register; default source('ingest', 'files')
        system, entity   the ingest.files system/entity of this table; default derived from the
                         relation: schema `raw_<system>`, table `<entity>`

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
    {%- set files_relation = files_relation if files_relation is not none else source('ingest', 'files') -%}
    {%- set rejects_relation = source('ingest', 'rejects') -%}
    {%- set system = system if system is not none else (source_relation.schema | replace('raw_', '', 1)) -%}
    {%- set entity = entity if entity is not none else source_relation.identifier -%}
    {%- set key_exprs = key_expressions(keys, 'source_rows') %}
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

    {% if mode == 'snapshot' -%}
    snapshots as (
        {{ snapshot_versions(source_relation, files_relation, system, entity) }}
    ),

    last_appearances as (
        -- per key its row in the newest snapshot that lists it
        select
            source_rows.*,
            snapshots.export_date as last_listed_on
        from {{ source_relation }} as source_rows
        inner join snapshots on source_rows._load_id = snapshots.load_id
        where
            {% for expr in key_exprs -%}
            {{ 'and ' if not loop.first }}{{ expr }} is not null
            {% endfor %}
        qualify row_number() over (
            partition by {{ key_exprs | join(', ') }}
            order by snapshots.export_date desc, source_rows._line desc
        ) = 1
    ),

    unreadable_listings as (
        -- a row the ingest rejected is still listed by that snapshot: unreadable, not deleted at the source
        select
            rejects.record_key,
            max(snapshots.export_date) as last_listed_on
        from {{ rejects_relation }} as rejects
        inner join snapshots on rejects.load_id = snapshots.load_id
        where rejects.record_key is not null
        group by rejects.record_key
    ),

    deletions as (
        -- the first snapshot after the last one that listed the key, readable or not
        select
            last_appearances._load_id,
            last_appearances._line,
            min(snapshots.export_date) as deleted_on
        from last_appearances
        left join unreadable_listings
            on concat_ws('|', {{ key_exprs | join(', ') | replace('source_rows.', 'last_appearances.') }})
            = unreadable_listings.record_key
        inner join snapshots
            on snapshots.export_date > greatest(
                last_appearances.last_listed_on, unreadable_listings.last_listed_on
            )
        group by last_appearances._load_id, last_appearances._line
    ),

    current_rows as (
        select
            last_appearances.* exclude (last_listed_on),
            deletions.deleted_on is not null as is_deleted_at_source,
            deletions.deleted_on as deleted_at_source_on
        from last_appearances
        left join deletions
            on last_appearances._load_id = deletions._load_id
            and last_appearances._line = deletions._line
    )
    {%- else -%}
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
    snapshot_versions(source_relation, files_relation, system, entity): (load_id, export_date) of the
    snapshots that count, one per export date: the newest current file version of that date (the newest
    loaded version of its file name) that has rows. Shared with the incremental change detection.
-#}
{% macro snapshot_versions(source_relation, files_relation, system, entity) -%}
    select
        current_file_versions.load_id,
        current_file_versions.export_date
    from (
        select
            files.load_id,
            files.export_date
        from {{ files_relation }} as files
        where
            files.system = '{{ system }}'
            and files.entity = '{{ entity }}'
            and files.status = 'loaded'
        qualify row_number() over (partition by files.source_file order by files.load_id desc) = 1
    ) as current_file_versions
    where current_file_versions.load_id in (select loaded_rows._load_id from {{ source_relation }} as loaded_rows)
    qualify row_number() over (
        partition by current_file_versions.export_date order by current_file_versions.load_id desc
    ) = 1
{%- endmacro %}
