{#-
    The customers whose rows of a customer-partitioned model may have changed since its previous build.

    The model int_changed_customers computes them once per build, for every customer-partitioned incremental
    model that reads it (its consumers), since the oldest of their previous builds: changed_customers(since).
    Each consumer's pre-hook takes them (consumer_changes), or every customer when something else its rows
    depend on changed (its fingerprint), or when the computed set does not cover its window.
-#}

{#-
    changed_customers(since): customer_id as key_expressions writes it, for the loads after `since` (an SQL
    expression of a load_id):
      - every customer when a snapshot file of customers, services, key handovers or products was corrected
        (a new version of a file loaded before) or came late (an export date not newer than one loaded
        before), or when the product catalogue changed;
      - the customers of every invoice, invoice line, payment, collection case and ticket in a file loaded
        since, in any version of it (an invoice moved to another customer changes both);
      - the customers of every customer, service and key-handover version a load since introduced or closed
        (a row added, changed or gone from the snapshot: the raw tables of snapshots hold versions);
      - every customer with a rectification, an objection or a legal hold on record (few, and cheap to
        recompute);
      - the customers with a service that opened, ended or vanished, or an invoice that fell due, between
        the cut-off date of load `since` and the newest export date: what counts as active or overdue on
        the cut-off (or audit) date changed for them.
-#}
{% macro changed_customers(since) -%}
    {%- set customer = clean_string('cast(changed_rows.customer_id as varchar)') -%}
    {%- set cutoff_window = cutoff_date(since) ~ ' and ' ~ newest_export_date() -%}
    {%- set recompute_everyone -%}
        select
            false
            {% for system, entity in [('crm', 'customers'), ('services', 'services'),
                                      ('services', 'key_handovers'), ('services', 'products')] -%}
            or exists ({{ corrected_files(system, entity, since) }})
            {% endfor -%}
            or exists ({{ changed_snapshot_rows(source('services', 'products'), since) }})
    {%- endset -%}
    {% if holds(recompute_everyone) -%}
    select everyone.customer_id
    from ({{ retention_customers() }}) as everyone

    union

    {% endif -%}
    select {{ customer }} as customer_id
    from {{ source('billing', 'invoices') }} as changed_rows
    where {{ clean_string('changed_rows.invoice_id') }} in (
        {{ changed_delta_keys(source('billing', 'invoices'), 'invoice_id', since) }}
        union all
        {{ changed_delta_keys(source('billing', 'invoice_lines'), 'invoice_id', since) }}
        union all
        {{ changed_delta_keys(source('billing', 'payments'), 'invoice_id', since) }}
    )

    {% for system, entity, key in [('billing', 'collection_cases', 'case_id'), ('crm', 'tickets', 'ticket_id')] -%}
    union

    select {{ customer }}
    from {{ source(system, entity) }} as changed_rows
    where {{ clean_string('cast(changed_rows.' ~ key ~ ' as varchar)') }} in (
        {{ changed_delta_keys(source(system, entity), key, since) }}
    )
    {% endfor -%}

    {% for system, entity in [('crm', 'customers'), ('services', 'services'), ('services', 'key_handovers')] -%}
    union

    select {{ customer }}
    from ({{ changed_snapshot_rows(source(system, entity), since) }}) as changed_rows
    {% endfor -%}

    union

    select {{ customer }}
    from {{ source('privacy', 'rectifications') }} as changed_rows

    union

    select {{ customer }}
    from {{ source('privacy', 'objections') }} as changed_rows

    union

    select {{ customer }}
    from {{ ref('int_retention__legal_holds') }} as changed_rows

    union

    select {{ customer }}
    from {{ ref('stg_services__services') }} as changed_rows
    where
        changed_rows.opened_on between {{ cutoff_window }}
        or changed_rows.terminated_on between {{ cutoff_window }}
        or changed_rows.deleted_at_source_on between {{ cutoff_window }}

    union

    select {{ customer }}
    from {{ ref('stg_billing__invoices') }} as changed_rows
    where changed_rows.due_date between {{ cutoff_window }}
{%- endmacro %}

{#-
    The load after which int_changed_customers counts changes: the oldest previous build of its consumers
    (the models that depend on it) that exist; none when there is none (a full build: nothing to compute).
    At execution only: dbt's graph of the project is there then.
-#}
{% macro oldest_consumer_build() -%}
    {%- set builds = [] -%}
    {%- if execute and not flags.FULL_REFRESH -%}
        {%- for node in graph.nodes.values() if model.unique_id in node.depends_on.nodes -%}
            {%- if adapter.get_relation(node.database, node.schema, node.alias) is not none -%}
                {%- do builds.append(previous_load_id(node)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(none if not builds else 'least(' ~ builds | join(', ') ~ ')') }}
{%- endmacro %}

{#-
    Pre-hook query of a consumer of int_changed_customers: the customers it computed, and every customer
    (`all_customers`) too when the model's fingerprint differs from the one recorded, or when that set does
    not cover the loads since the model's previous build (not computed for the newest load, or from a later
    one: int_changed_customers records the load it counted from as its fingerprint).
-#}
{% macro consumer_changes(all_customers, fingerprint) -%}
    {%- set changed = ref('int_changed_customers') -%}
    {%- set recompute_everyone -%}
        select
            ({{ fingerprint }}) is distinct from {{ previous_fingerprint() }}
            or not exists (
                select 1
                from {{ incremental_state_relation(changed.database) }} as changed_state
                where
                    changed_state.model = '{{ changed.identifier }}'
                    and changed_state.load_id = (select max(files.load_id) from {{ source('ingest', 'files') }} as files)
                    and cast(changed_state.fingerprint as bigint) <= {{ previous_load_id() }}
            )
    {%- endset -%}
    select changed.customer_id
    from {{ changed }} as changed
    {#- a full build runs no pre-hook: nothing to ask #}
    {% if not is_incremental() or holds(recompute_everyone) -%}
    union

    select everyone.customer_id
    from ({{ all_customers }}) as everyone
    {%- endif %}
{%- endmacro %}

{#-
    Whether a condition (a query of one boolean) holds, asked before a query that depends on it is written:
    the branch it guards ("every customer") reads the staging views, seconds even when a `where` on the
    condition would discard it all. While dbt parses (not execute) it holds, so that the branch is rendered
    and dbt sees its refs.
-#}
{% macro holds(condition) -%}
    {{ return(not execute or run_query(condition).columns[0].values()[0]) }}
{%- endmacro %}

{#-
    Snapshot files of one entity loaded after `since` that replace a version loaded before (a corrected file),
    or whose export date is not newer than one loaded before (a late file). Either rewrites versions of days
    before the newest, even removes some: what changed is not told by the versions its load made or closed.
-#}
{% macro corrected_files(system, entity, since) -%}
    select 1
    from {{ source('ingest', 'files') }} as new_versions
    inner join {{ source('ingest', 'files') }} as old_versions
        on
            new_versions.system = old_versions.system
            and new_versions.entity = old_versions.entity
            and old_versions.load_id < new_versions.load_id
            and (
                new_versions.source_file = old_versions.source_file
                or new_versions.export_date <= old_versions.export_date
            )
    where
        new_versions.system = '{{ system }}'
        and new_versions.entity = '{{ entity }}'
        and new_versions.load_id > {{ since }}
        and new_versions.status = 'loaded'
        and old_versions.status = 'loaded'
{%- endmacro %}

{#-
    The versions of a snapshot entity that a load after `since` introduced (a row new or changed in its
    snapshot) or closed (changed, or gone from it): both sides of every difference between a snapshot loaded
    since and the one before it, read from two columns instead of comparing the snapshots.
-#}
{% macro changed_snapshot_rows(source_relation, since) -%}
    select changed_versions.*
    from {{ source_relation }} as changed_versions
    where changed_versions._load_id > {{ since }} or changed_versions._ended_load_id > {{ since }}
{%- endmacro %}

{#- The cut-off date (the newest services snapshot) as of load `since`. -#}
{% macro cutoff_date(since) -%}
    (
        select max(files.export_date)
        from {{ source('ingest', 'files') }} as files
        where
            files.system = 'services'
            and files.entity = 'services'
            and files.status = 'loaded'
            and files.load_id <= {{ since }}
    )
{%- endmacro %}

{#- The newest export date loaded: the latest the cut-off and the audit date can be. -#}
{% macro newest_export_date() -%}
    (select max(files.export_date) from {{ source('ingest', 'files') }} as files where files.status = 'loaded')
{%- endmacro %}

{#-
    The rows of `relation` (invoice lines or payments, named as its model) that belong to the invoices of
    `invoices` (the changed customers' invoices), and with_orphans those of no invoice at all (no customer:
    recomputed every time; a model that joins them to their invoice drops them anyway). The invoice-less ones
    come from an anti join, which spills: `not in (every invoice)` is a mark join that ran out of memory at a
    million customers.
-#}
{% macro of_changed_invoices(relation, invoices, with_orphans=true) -%}
    {%- set all_rows, all_invoices = ref(relation), ref('stg_billing__invoices') -%}
    {%- if is_incremental() -%}
        {{ relation }}.invoice_id in (select {{ invoices }}.invoice_id from {{ invoices }})
        {%- if with_orphans %}
        or {{ relation }}.invoice_id is null
        or {{ relation }}.invoice_id in (
            select without_invoice.invoice_id
            from {{ all_rows }} as without_invoice
            anti join {{ all_invoices }} as all_invoices on without_invoice.invoice_id = all_invoices.invoice_id
        )
        {%- endif %}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#-
    The changed-customer sets a customer-partitioned model takes (its meta `changed_customers`, read by its
    hooks, macros/incremental/hooks.sql): everyone (`all_customers`, a query of customer_id), and what its rows
    depend on besides the data (`fingerprint`, a query of one value; a different one recomputes everyone).
      services   a model derived from services, invoices and the month spine: the customers of services and
                 invoices; cutoff_month_fingerprint
      retention  the retention records: every customer of the register; retention_fingerprint
-#}
{% macro changed_customer_set(name) -%}
    {%- if name == 'services' -%}
        {{ return({
            'all_customers': 'select customer_id from ' ~ ref('stg_services__services')
                ~ ' union select customer_id from ' ~ ref('stg_billing__invoices'),
            'fingerprint': cutoff_month_fingerprint(),
        }) }}
    {%- elif name == 'retention' -%}
        {{ return({'all_customers': retention_customers(), 'fingerprint': retention_fingerprint()}) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("changed_customers is 'services' or 'retention', not '" ~ name ~ "'") }}
    {%- endif -%}
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

{#- Every customer of the register: of every entity the retention records come from. -#}
{% macro retention_customers() -%}
    {%- for model in ['stg_crm__customers', 'stg_services__services', 'stg_billing__invoices',
                      'stg_billing__collection_cases', 'stg_crm__tickets', 'stg_services__key_handovers'] -%}
        select customer_id from {{ ref(model) }}
        {{ 'union' if not loop.last }}
    {% endfor -%}
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
