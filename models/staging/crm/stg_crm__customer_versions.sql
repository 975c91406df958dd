-- The customers' superseded versions: what a later snapshot changed or dropped, kept as versions in raw
-- (the current row is in stg_crm__customers). Their own retention rule times them from the day they were
-- superseded.
with

versions as (

    {{ superseded_rows(source('crm', 'customers'), key='customer_id') }}

),

final as (

    select * from versions

)

select * from final
