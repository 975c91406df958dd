{#-
    changed_customers(all_customers, fingerprint)

    The customers whose rows of a customer-partitioned model (`customer_id` as key_expressions writes it)
    may have changed since the model's previous build, for `forget_changes`:
      - every customer (`all_customers`, a query of customer_id) when the fingerprint differs from the one
        recorded, when a snapshot file of customers, services, key handovers or products was corrected
        (a new version of a file loaded before), or when the product catalogue changed;
      - the customers of every invoice, invoice line, payment, collection case and ticket in a file loaded
        since, in any version of it (an invoice moved to another customer changes both);
      - the customers of every customer, service and key-handover row that differs between a snapshot
        loaded since and the snapshot before it (added, removed or changed rows);
      - every customer with a rectification or a legal hold on record (few, and cheap to recompute);
      - the customers with a service that opened, ended or vanished, or an invoice that fell due, between
        the previous build's cut-off date and the newest export date: what counts as active or overdue on
        the cut-off (or audit) date changed for them.
-#}
{% macro changed_customers(all_customers, fingerprint) -%}
    {%- set customer = clean_string('cast(changed_rows.customer_id as varchar)') -%}
    select everyone.customer_id
    from ({{ all_customers }}) as everyone
    where
        ({{ fingerprint }}) is distinct from {{ previous_fingerprint() }}
        {% for system, entity in [('crm', 'customers'), ('services', 'services'),
                                  ('services', 'key_handovers'), ('services', 'products')] -%}
        or exists ({{ corrected_files(system, entity) }})
        {% endfor -%}
        or exists ({{ changed_snapshot_rows(source('services', 'products')) }})

    union

    select {{ customer }}
    from {{ source('billing', 'invoices') }} as changed_rows
    where {{ clean_string('changed_rows.invoice_id') }} in (
        {{ changed_delta_keys(source('billing', 'invoices'), 'invoice_id') }}
        union all
        {{ changed_delta_keys(source('billing', 'invoice_lines'), 'invoice_id') }}
        union all
        {{ changed_delta_keys(source('billing', 'payments'), 'invoice_id') }}
    )

    {% for system, entity, key in [('billing', 'collection_cases', 'case_id'), ('crm', 'tickets', 'ticket_id')] -%}
    union

    select {{ customer }}
    from {{ source(system, entity) }} as changed_rows
    where {{ clean_string('cast(changed_rows.' ~ key ~ ' as varchar)') }} in (
        {{ changed_delta_keys(source(system, entity), key) }}
    )
    {% endfor -%}

    {% for system, entity in [('crm', 'customers'), ('services', 'services'), ('services', 'key_handovers')] -%}
    union

    select {{ customer }}
    from ({{ changed_snapshot_rows(source(system, entity)) }}) as changed_rows
    {% endfor -%}

    union

    select {{ customer }}
    from {{ source('privacy', 'rectifications') }} as changed_rows

    union

    select {{ customer }}
    from {{ ref('int_retention__legal_holds') }} as changed_rows

    union

    select {{ customer }}
    from {{ ref('stg_services__services') }} as changed_rows
    where
        changed_rows.opened_on between {{ previous_cutoff_date() }} and {{ newest_export_date() }}
        or changed_rows.terminated_on between {{ previous_cutoff_date() }} and {{ newest_export_date() }}
        or changed_rows.deleted_at_source_on between {{ previous_cutoff_date() }} and {{ newest_export_date() }}

    union

    select {{ customer }}
    from {{ ref('stg_billing__invoices') }} as changed_rows
    where changed_rows.due_date between {{ previous_cutoff_date() }} and {{ newest_export_date() }}
{%- endmacro %}

{#- Files of one entity loaded since the previous build that replace a version loaded before. -#}
{% macro corrected_files(system, entity) -%}
    select 1
    from {{ source('ingest', 'files') }} as new_versions
    inner join {{ source('ingest', 'files') }} as old_versions
        on
            new_versions.source_file = old_versions.source_file
            and old_versions.load_id < new_versions.load_id
    where
        new_versions.system = '{{ system }}'
        and new_versions.entity = '{{ entity }}'
        and new_versions.load_id > {{ previous_load_id() }}
        and old_versions.status = 'loaded'
{%- endmacro %}

{#-
    The raw rows of a snapshot entity that differ between a snapshot loaded since the previous build and the
    snapshot before it (the snapshots current_rows counts: snapshot_versions). A row is compared whole, by a hash of every exported column.
-#}
{% macro changed_snapshot_rows(source_relation) -%}
    {%- set system = source_relation.schema | replace('raw_', '', 1) -%}
    {%- set entity = source_relation.identifier -%}
    with

    snapshots as (
        select
            versions.load_id,
            lag(versions.load_id) over (order by versions.export_date) as previous_load_id
        from ({{ snapshot_versions(source_relation, source('ingest', 'files'), system, entity) }}) as versions
    ),

    new_snapshots as (
        select * from snapshots where snapshots.load_id > {{ previous_load_id() }}
    ),

    sides as (
        select
            new_snapshots.load_id as pair,
            snapshot_rows._load_id = new_snapshots.load_id as is_new,
            hash(*columns(snapshot_rows.* exclude (_load_id, _source_file, _line, _export_date))) as row_hash,
            snapshot_rows.*
        from new_snapshots
        inner join {{ source_relation }} as snapshot_rows
            on snapshot_rows._load_id in (new_snapshots.load_id, new_snapshots.previous_load_id)
    )

    -- a row found on one side of its pair only
    select sides.* exclude (pair, is_new, row_hash)
    from sides
    window same_row as (partition by sides.pair, sides.row_hash)
    qualify bool_and(sides.is_new) over same_row or not bool_or(sides.is_new) over same_row
{%- endmacro %}


{#- The cut-off date (the newest services snapshot) the previous build saw. -#}
{% macro previous_cutoff_date() -%}
    (
        select max(files.export_date)
        from {{ source('ingest', 'files') }} as files
        where
            files.system = 'services'
            and files.entity = 'services'
            and files.status = 'loaded'
            and files.load_id <= {{ previous_load_id() }}
    )
{%- endmacro %}

{#- The newest export date loaded: the latest the cut-off and the audit date can be. -#}
{% macro newest_export_date() -%}
    (select max(files.export_date) from {{ source('ingest', 'files') }} as files where files.status = 'loaded')
{%- endmacro %}

{#-
    The rows of `relation` (invoice lines or payments, named as its model) that belong to the invoices of
    `invoices` (the changed customers' invoices), or to no invoice at all (no customer: recomputed every
    time). The invoice-less ones come from an anti join, which spills: `not in (every invoice)` is a mark
    join that ran out of memory at a million customers.
-#}
{% macro of_changed_invoices(relation, invoices) -%}
    {%- set all_rows, all_invoices = ref(relation), ref('stg_billing__invoices') -%}
    {%- if is_incremental() -%}
        {{ relation }}.invoice_id is null
        or {{ relation }}.invoice_id in (
            select {{ invoices }}.invoice_id from {{ invoices }}
            union all
            select without_invoice.invoice_id
            from {{ all_rows }} as without_invoice
            anti join {{ all_invoices }} as all_invoices on without_invoice.invoice_id = all_invoices.invoice_id
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- changed_customers of a model derived from services, invoices and the month spine. -#}
{% macro changed_service_customers() -%}
    {{ changed_customers(
        all_customers="select customer_id from " ~ ref('stg_services__services')
            ~ " union select customer_id from " ~ ref('stg_billing__invoices'),
        fingerprint=cutoff_month_fingerprint(),
    ) }}
{%- endmacro %}

{#-
    What a month-partitioned model depends on besides the data: the cut-off month (a new month adds a row),
    and for the marts the erasures and the pseudonym key (erasures_and_key).
-#}
{% macro cutoff_month_fingerprint() -%}
    select concat_ws(
        '|',
        (select cast(data_cutoff.cutoff_month as varchar) from {{ ref('int_data_cutoff') }} as data_cutoff),
        {{ erasures_and_key() }}
    )
{%- endmacro %}

{#- changed_customers of the retention records. -#}
{% macro changed_retention_customers() -%}
    {%- set all_customers -%}
        {%- for model in ['stg_crm__customers', 'stg_services__services', 'stg_billing__invoices',
                          'stg_billing__collection_cases', 'stg_crm__tickets', 'stg_services__key_handovers'] -%}
            select customer_id from {{ ref(model) }}
            {{ 'union' if not loop.last }}
        {% endfor -%}
    {%- endset -%}
    {{ changed_customers(all_customers=all_customers, fingerprint=retention_fingerprint()) }}
{%- endmacro %}

{#-
    What the retention records depend on besides the data: the rules, the legal holds, `retention_as_of`,
    the erasures and the pseudonym key.
-#}
{% macro retention_fingerprint() -%}
    select md5(concat_ws(
        '|',
        (select string_agg(cast(rules as varchar), ';' order by rules.rule_id) from {{ ref('int_retention__rules') }} as rules),
        (select string_agg(cast(holds as varchar), ';' order by cast(holds as varchar)) from {{ ref('int_retention__legal_holds') }} as holds),
        '{{ var('retention_as_of', '') }}',
        {{ erasures_and_key() }}
    ))
{%- endmacro %}

{#-
    Inputs of every pseudonymised or retention table besides the exports: how many records the retention
    enforcement has erased, and which pseudonym key is in use (the key of a constant: rotating the key
    re-keys every row).
-#}
{% macro erasures_and_key() -%}
    (select cast(count(*) as varchar) from {{ source('retention', 'erasure_ledger') }} as erased),
    pseudonymous_key('incremental-state')
{%- endmacro %}
