-- Customers with the attributes the marts may carry, derived here so that the personal data they come
-- from (HETU, postal code, names) never leaves the vault: postal area (first two digits of a Finnish
-- postal code), region (Posti numbering area mapped to a region), age band (birth date from the HETU,
-- age on the data cut-off date). Personal data in clear: `customer_id`.
-- A table: four marts and their tests read it, and a view recomputed the staging view under it for each.
{{ config(materialized='table') }}

with

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

data_cutoff as (

    select * from {{ ref('int_data_cutoff') }}

),

located as (

    select
        customers.*,
        case
            when
                coalesce(customers.country_code, 'FI') = 'FI'
                and regexp_matches(customers.postal_code, '^[0-9]{5}$')
                then left(customers.postal_code, 2)
        end as postal_area,
        -- HETU DDMMYYCNNNQ: the century sign C gives the century of the birth year
        case
            when customers.customer_type = 'person' and regexp_matches(customers.hetu, '^[0-9]{6}[-+A-FU-Y]')
                then
                    try_cast(
                        case
                            when substr(customers.hetu, 7, 1) = '+' then '18'
                            when substr(customers.hetu, 7, 1) in ('-', 'U', 'V', 'W', 'X', 'Y') then '19'
                            else '20'
                        end
                        || substr(customers.hetu, 5, 2) || '-' || substr(customers.hetu, 3, 2)
                        || '-' || substr(customers.hetu, 1, 2)
                        as date
                    )
        end as birth_date

    from customers

),

aged as (

    select
        located.*,
        -- full years on the cut-off date
        date_diff('year', located.birth_date, data_cutoff.cutoff_date)
        - case
            when strftime(data_cutoff.cutoff_date, '%m%d') < strftime(located.birth_date, '%m%d') then 1
            else 0
        end as age_years

    from located
    cross join data_cutoff

),

final as (

    select
        aged.customer_id,
        aged.customer_type,
        aged.language_code,
        aged.postal_area,
        aged.has_marketing_consent,
        aged.is_deleted_at_source,
        aged.deleted_at_source_on,
        -- A sole trader's or partnership's name (Tmi, Ky, Ay) is a natural person's business: not shown.
        case
            when
                aged.customer_type = 'business'
                and not regexp_matches(aged.company_name, '\b(tmi|t:mi|toiminimi|ky|ay)\b', 'i')
                then aged.company_name
        end as business_name,
        case
            when aged.country_code is not null and aged.country_code <> 'FI' then 'abroad'
            when aged.postal_area is null then 'unknown'
            when aged.postal_area = '22' then 'Ahvenanmaa'
            when aged.postal_area <= '10' then 'Uusimaa'
            when aged.postal_area <= '14' or aged.postal_area in ('30', '31') then 'Kanta-Häme'
            when aged.postal_area <= '19' then 'Päijät-Häme'
            when aged.postal_area <= '25' or aged.postal_area = '32' then 'Varsinais-Suomi'
            when aged.postal_area <= '29' then 'Satakunta'
            when aged.postal_area <= '39' then 'Pirkanmaa'
            when aged.postal_area <= '44' then 'Keski-Suomi'
            when aged.postal_area <= '49' then 'Kymenlaakso'
            when aged.postal_area <= '52' or aged.postal_area in ('57', '58') then 'Etelä-Savo'
            when aged.postal_area <= '59' then 'Etelä-Karjala'
            when aged.postal_area <= '64' then 'Etelä-Pohjanmaa'
            when aged.postal_area <= '66' then 'Pohjanmaa'
            when aged.postal_area <= '69' then 'Keski-Pohjanmaa'
            when aged.postal_area in ('75', '80', '81', '82', '83') then 'Pohjois-Karjala'
            when aged.postal_area <= '79' then 'Pohjois-Savo'
            when aged.postal_area in ('87', '88', '89') then 'Kainuu'
            when aged.postal_area <= '93' then 'Pohjois-Pohjanmaa'
            else 'Lappi'
        end as region,
        case
            when aged.age_years is null then null
            when aged.age_years < 25 then 'under 25'
            when aged.age_years < 35 then '25-34'
            when aged.age_years < 45 then '35-44'
            when aged.age_years < 55 then '45-54'
            when aged.age_years < 65 then '55-64'
            when aged.age_years < 75 then '65-74'
            else '75+'
        end as age_band,
        aged.einvoice_address is not null as has_einvoice_address

    from aged

)

select * from final
