-- The data cut-off of the churn figures: one row. The cut-off date is the export date of the newest services
-- snapshot loaded (an empty one is refused); months after it do not exist.
-- A table: a dozen models, their tests and the incremental models' fingerprints read it, and each read of a
-- view recomputed the services staging view (10-15 s at a million customers).
{{ config(materialized='table') }}

with

services as (

    select * from {{ ref('stg_services__services') }}

),

files as (

    select * from {{ source('ingest', 'files') }}

),

-- the newest services snapshot: from the load log, for staging's lineage is of the file that introduced each
-- version (a day on which no service changed introduced none)
cutoff as (

    select
        (
            select max(files.export_date)
            from files
            where files.system = 'services' and files.entity = 'services' and files.status = 'loaded'
        ) as cutoff_date,
        min(services.opened_on) filter (where not services.is_deleted_at_source) as first_opened_on

    from services

),

newest_exports as (

    select
        max(files.export_date) filter (where files.system = 'crm') as newest_crm_export_on,
        max(files.export_date) filter (where files.system = 'services') as newest_services_export_on,
        max(files.export_date) filter (where files.system = 'billing') as newest_billing_export_on

    from files
    where files.status = 'loaded'

),

final as (

    select
        cutoff.cutoff_date,
        cast(date_trunc('month', cutoff.cutoff_date) as date) as cutoff_month,
        cast(date_trunc('month', least(cutoff.first_opened_on, cutoff.cutoff_date)) as date) as first_month,
        newest_exports.newest_crm_export_on,
        newest_exports.newest_services_export_on,
        newest_exports.newest_billing_export_on

    from cutoff
    cross join newest_exports

)

select * from final
