-- One row per debt handed to a collection agency, keyed pseudonymously. The agency is a company.
with

collection_cases as (

    select * from {{ ref('stg_billing__collection_cases') }}

),

final as (

    select
        collection_cases.agency_name,
        collection_cases.agency_country_code,
        collection_cases.handed_over_on,
        collection_cases.status,
        collection_cases.closed_on,
        cast(collection_cases.amount as decimal(14, 2)) as amount,
        pseudonymous_key(collection_cases.case_id) as case_key,
        pseudonymous_key(collection_cases.customer_id) as customer_key,
        pseudonymous_key(collection_cases.invoice_id) as invoice_key

    from collection_cases

)

select * from final
