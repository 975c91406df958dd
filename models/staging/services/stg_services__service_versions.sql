-- The services' superseded versions: what a later snapshot changed or dropped, kept as versions in raw (the
-- current row is in stg_services__services). Their own retention rule times them from the day they were
-- superseded.
with

versions as (

    {{ superseded_rows(source('services', 'services'), key='service_id') }}

),

final as (

    select * from versions

)

select * from final
