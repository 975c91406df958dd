-- Every record of every data category of the register with its retention rule (retention/policy.yml, via
-- int_retention__rules), the day its clock started, its expiry date and any legal hold on its customer;
-- int_retention__records adds the status on the audit date.
--
-- The audit date (int_retention__audit_date) decides here only which services still count as active and
-- which disputes apply.
-- No clock starts while what it is about still goes on: the customer relationship while a service is active,
-- a debt open, a data-centre key out or a ticket open (customer_states below); a service while it is active;
-- a collection case while it is open; a ticket while it is open; a key handover while the key is out. An
-- accounting voucher's clock is the Accounting Act's, fixed by the voucher date (the end of the calendar year
-- in which its financial year ended, which may lie ahead): the relationship does not move it. A superseded
-- version of a customer, service or key handover (raw keeps the snapshots' changes as versions) is a record
-- of its own, timed from the day it was superseded.
-- expires_on = clock_started_on + the rule's period (calendar years/months, clamped to the month's end:
-- 29.2.2024 + 3 years = 28.2.2027); the record may be kept through expires_on. Personal data in clear: the
-- ids.
-- Incremental by customer (macros/incremental): a build recomputes the records of the customers whose data
-- changed, or whose services started or ended since the previous audit date; every record when the policy,
-- the legal holds or `retention_as_of` changed. Records without a customer (lines and payments of an
-- invoice not exported) are recomputed every time.
{{
    config(
        materialized='incremental',
        meta={'partition_key': 'customer_id', 'changed_customers': 'retention'},
    )
}}
with

customers as (

    select * from {{ ref('stg_crm__customers') }}
    where {{ is_changed('customer_id', 'stg_crm__customers') }}

),

services as (

    select * from {{ ref('stg_services__services') }}
    where {{ is_changed('customer_id', 'stg_services__services') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where {{ is_changed('customer_id', 'stg_billing__invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}
    where {{ of_changed_invoices('stg_billing__invoice_lines', 'invoices') }}

),

payments as (

    select * from {{ ref('stg_billing__payments') }}
    where {{ of_changed_invoices('stg_billing__payments', 'invoices') }}

),

collection_cases as (

    select * from {{ ref('stg_billing__collection_cases') }}
    where {{ is_changed('customer_id', 'stg_billing__collection_cases') }}

),

tickets as (

    select * from {{ ref('stg_crm__tickets') }}
    where {{ is_changed('customer_id', 'stg_crm__tickets') }}

),

key_handovers as (

    select * from {{ ref('stg_services__key_handovers') }}
    where {{ is_changed('customer_id', 'stg_services__key_handovers') }}

),

customer_versions as (

    select * from {{ ref('stg_crm__customer_versions') }}
    where {{ is_changed('customer_id', 'stg_crm__customer_versions') }}

),

service_versions as (

    select * from {{ ref('stg_services__service_versions') }}
    where {{ is_changed('customer_id', 'stg_services__service_versions') }}

),

key_handover_versions as (

    select * from {{ ref('stg_services__key_handover_versions') }}
    where {{ is_changed('customer_id', 'stg_services__key_handover_versions') }}

),

rules as (

    select * from {{ ref('int_retention__rules') }}

),

erasure_ledger as (

    select * from {{ source('retention', 'erasure_ledger') }}

),

disputes as (

    select * from {{ ref('int_retention__legal_holds') }}

),

audit_date as (

    select * from {{ ref('int_retention__audit_date') }}

),

policy as (

    -- settings common to every rule (the policy file's top level)
    select
        cast(any_value(rules.financial_year_end_month) as integer) as fy_end_month,
        cast(any_value(rules.financial_year_end_day) as integer) as fy_end_day,
        cast(bool_or(rules.hold_on_open_collection_case) as boolean) as hold_on_open_collection_case

    from rules

),

-- Superseded versions (clock `superseded`): every version of a snapshot record with identifying data that a
-- later snapshot superseded. Record type `<type>_version`, id `<key>@<valid_from>` (as core/erasure.py
-- version_record_id writes it; privacy/config.py erasure_tables derives the same types from the data map),
-- of the customer the version names, superseded on its `superseded_on`.
superseded_versions as (

    select
        'customer_version' as record_type,
        customer_versions.customer_id
        || '@'
        || strftime(customer_versions.valid_from, '%Y-%m-%d') as record_id,
        customer_versions.customer_id,
        customer_versions.superseded_on
    from customer_versions

    union all

    select
        'service_version' as record_type,
        service_versions.service_id
        || '@'
        || strftime(service_versions.valid_from, '%Y-%m-%d') as record_id,
        service_versions.customer_id,
        service_versions.superseded_on
    from service_versions

    union all

    select
        'key_handover_version' as record_type,
        key_handover_versions.handover_id
        || '@'
        || strftime(key_handover_versions.valid_from, '%Y-%m-%d') as record_id,
        key_handover_versions.customer_id,
        key_handover_versions.superseded_on
    from key_handover_versions

),

-- a service ends on terminated_on (the first day without service); one that vanished from the services
-- snapshot without a termination date ended on the day it vanished. It is active on the audit date until
-- then: a termination agreed for a later day has not ended it yet.
service_ends as (

    select
        services.service_id,
        services.customer_id,
        coalesce(services.terminated_on, services.deleted_at_source_on) as ended_on

    from services

),

service_spans as (

    select
        service_ends.service_id,
        service_ends.customer_id,
        service_ends.ended_on,
        service_ends.ended_on is null or service_ends.ended_on > audit_date.as_of_date as is_active

    from service_ends
    cross join audit_date

),

case_states as (

    select
        collection_cases.case_id,
        collection_cases.customer_id,
        collection_cases.status = 'open'
        or (
            collection_cases.closed_on is null
            and coalesce(collection_cases.status, 'open') not in ('paid', 'written_off', 'cancelled')
        ) as is_open,
        coalesce(collection_cases.closed_on, cast(collection_cases.updated_at as date)) as closed_on

    from collection_cases

),

-- a ticket is open while closed_at is null; closed_at is an instant, the day it closed is the day in Helsinki
ticket_states as (

    select
        tickets.ticket_id,
        tickets.customer_id,
        cast(timezone('Europe/Helsinki', tickets.closed_at) as date) as closed_on,
        tickets.closed_at is null as is_open

    from tickets

),

-- a data-centre key is out while its handover has no returned_on; a handover that vanished from the
-- snapshot without a return date counts as returned the day it vanished
key_states as (

    select
        key_handovers.handover_id,
        key_handovers.customer_id,
        coalesce(key_handovers.returned_on, key_handovers.deleted_at_source_on) as returned_on

    from key_handovers

),

invoice_payments as (

    select
        payments.invoice_id,
        max(payments.paid_on) as last_paid_on

    from payments
    group by payments.invoice_id

),

-- every customer any record names, also those the CRM export does not list (known only by a ticket or a
-- key handover): their disputes hold their records too
customer_ids as (

    select customers.customer_id from customers
    union
    select service_spans.customer_id from service_spans
    union
    select invoices.customer_id from invoices
    union
    select case_states.customer_id from case_states
    union
    select ticket_states.customer_id from ticket_states
    union
    select key_states.customer_id from key_states
    union
    select superseded_versions.customer_id from superseded_versions

),

customer_services as (

    select
        service_spans.customer_id,
        count(*) filter (where service_spans.is_active) as active_services,
        max(service_spans.ended_on) as last_service_ended_on

    from service_spans
    group by service_spans.customer_id

),

customer_invoices as (

    select
        invoices.customer_id,
        count(*) filter (where invoices.status in ('open', 'in_collection')) as open_invoices,
        max(invoice_payments.last_paid_on) as last_paid_on

    from invoices
    left join invoice_payments on invoices.invoice_id = invoice_payments.invoice_id
    group by invoices.customer_id

),

customer_cases as (

    select
        case_states.customer_id,
        count(*) filter (where case_states.is_open) as open_cases,
        max(case_states.closed_on) filter (where not case_states.is_open) as last_case_closed_on

    from case_states
    group by case_states.customer_id

),

customer_tickets as (

    select
        ticket_states.customer_id,
        count(*) filter (where ticket_states.is_open) as open_tickets,
        max(ticket_states.closed_on) as last_ticket_closed_on

    from ticket_states
    group by ticket_states.customer_id

),

customer_keys as (

    select
        key_states.customer_id,
        count(*) filter (where key_states.returned_on is null) as keys_out,
        max(key_states.returned_on) as last_key_returned_on

    from key_states
    group by key_states.customer_id

),

customer_disputes as (

    select
        disputes.customer_id,
        count(*) as disputes

    from disputes
    cross join audit_date
    where disputes.since is null or cast(disputes.since as date) <= audit_date.as_of_date
    group by disputes.customer_id

),

-- The customer relationship goes on while the customer still deals with us: while any service is active
-- on the audit date, any debt is open (an invoice open or in collection, a collection case open), any
-- data-centre key is out (a handover without a return date that has not vanished from the snapshot) or any
-- customer-service ticket is open (no closed_at). No clock runs then. It ends when none of these is left:
-- on the latest of the last service's end, the last payment, the last collection case closing, the last key
-- returned and the last ticket closed. A new service (reactivation), a new debt, a key signed out or a ticket
-- opened stops the clock again. Only a customer with none of these events at all is timed from the day the
-- customer record was created.
-- records already erased (a ticket, a key handover, a collection case) keep their event in the ledger: the
-- relationship does not end earlier once they are gone. A superseded version's event (the day a value
-- changed) is not one of the relationship's.
customer_erased_events as (

    select
        erasure_ledger.customer_key,
        max(erasure_ledger.event_on) as last_erased_event_on

    from erasure_ledger
    where erasure_ledger.event_on is not null and erasure_ledger.version_of is null
    group by erasure_ledger.customer_key

),

customer_states as (

    select
        customer_ids.customer_id,
        case
            when
                coalesce(customer_services.active_services, 0) = 0
                and coalesce(customer_invoices.open_invoices, 0) = 0
                and coalesce(customer_cases.open_cases, 0) = 0
                and coalesce(customer_keys.keys_out, 0) = 0
                and coalesce(customer_tickets.open_tickets, 0) = 0
                then coalesce(
                    greatest(
                        customer_services.last_service_ended_on,
                        customer_invoices.last_paid_on,
                        customer_cases.last_case_closed_on,
                        customer_keys.last_key_returned_on,
                        customer_tickets.last_ticket_closed_on,
                        customer_erased_events.last_erased_event_on
                    ),
                    cast(customers.created_at as date)
                )
        end as relationship_ended_on,
        nullif(
            concat_ws(
                ', ',
                case
                    when policy.hold_on_open_collection_case and coalesce(customer_cases.open_cases, 0) > 0
                        then 'open_collection_case'
                end,
                case when customer_disputes.disputes > 0 then 'dispute' end
            ),
            ''
        ) as hold_reason

    from customer_ids
    cross join policy
    left join customers on customer_ids.customer_id = customers.customer_id
    left join customer_services on customer_ids.customer_id = customer_services.customer_id
    left join customer_invoices on customer_ids.customer_id = customer_invoices.customer_id
    left join customer_cases on customer_ids.customer_id = customer_cases.customer_id
    left join customer_keys on customer_ids.customer_id = customer_keys.customer_id
    left join customer_tickets on customer_ids.customer_id = customer_tickets.customer_id
    left join customer_disputes on customer_ids.customer_id = customer_disputes.customer_id
    left join customer_erased_events
        on pseudonymous_key(customer_ids.customer_id) = customer_erased_events.customer_key

),

-- accounting vouchers: the voucher date, then the end of the financial year containing it
vouchers as (

    select
        'invoice' as record_type,
        invoices.invoice_id as record_id,
        invoices.customer_id,
        invoices.invoice_date as voucher_on

    from invoices

    union all

    select
        'invoice_line' as record_type,
        invoice_lines.invoice_id || '/' || invoice_lines.line_no as record_id,
        invoices.customer_id,
        coalesce(invoices.invoice_date, invoice_lines.period_end) as voucher_on

    from invoice_lines
    left join invoices on invoice_lines.invoice_id = invoices.invoice_id

    union all

    select
        'payment' as record_type,
        payments.payment_id as record_id,
        invoices.customer_id,
        payments.paid_on as voucher_on

    from payments
    left join invoices on payments.invoice_id = invoices.invoice_id

),

voucher_years as (

    select
        vouchers.*,
        make_date(
            year(vouchers.voucher_on),
            policy.fy_end_month,
            least(
                policy.fy_end_day,
                day(last_day(make_date(year(vouchers.voucher_on), policy.fy_end_month, 1)))
            )
        ) as fy_end_in_voucher_year

    from vouchers
    cross join policy

),

-- one row per record: its category and the day its clock's event happened (null: not yet)
events as (

    select
        'customer' as record_type,
        customers.customer_id as record_id,
        customers.customer_id,
        'identity_and_contact' as category,
        customer_states.relationship_ended_on,
        cast(null as date) as own_event_on

    from customers
    left join customer_states on customers.customer_id = customer_states.customer_id

    union all

    -- own event (clock `service_terminated`): the service's end, once it has ended on the audit date
    select
        'service' as record_type,
        service_spans.service_id as record_id,
        service_spans.customer_id,
        'customer_relationship' as category,
        customer_states.relationship_ended_on,
        case when not service_spans.is_active then service_spans.ended_on end as own_event_on

    from service_spans
    left join customer_states on service_spans.customer_id = customer_states.customer_id

    union all

    -- the clock starts at the end of the calendar year in which the voucher's financial year ended
    select
        voucher_years.record_type,
        voucher_years.record_id,
        voucher_years.customer_id,
        'accounting_vouchers' as category,
        cast(null as date) as relationship_ended_on,
        make_date(
            year(voucher_years.fy_end_in_voucher_year)
            + case when voucher_years.voucher_on > voucher_years.fy_end_in_voucher_year then 1 else 0 end,
            12,
            31
        ) as own_event_on

    from voucher_years

    union all

    select
        'collection_case' as record_type,
        case_states.case_id as record_id,
        case_states.customer_id,
        'debt_collection' as category,
        cast(null as date) as relationship_ended_on,
        case when not case_states.is_open then case_states.closed_on end as own_event_on

    from case_states

    union all

    -- null while the ticket is open
    select
        'ticket' as record_type,
        ticket_states.ticket_id as record_id,
        ticket_states.customer_id,
        'customer_service_communication' as category,
        cast(null as date) as relationship_ended_on,
        ticket_states.closed_on as own_event_on

    from ticket_states

    union all

    -- null while the key is out
    select
        'key_handover' as record_type,
        key_states.handover_id as record_id,
        key_states.customer_id,
        'key_handovers' as category,
        cast(null as date) as relationship_ended_on,
        key_states.returned_on as own_event_on

    from key_states

    union all

    -- the day the version was superseded
    select
        superseded_versions.record_type,
        superseded_versions.record_id,
        superseded_versions.customer_id,
        'superseded_values' as category,
        cast(null as date) as relationship_ended_on,
        superseded_versions.superseded_on as own_event_on

    from superseded_versions

),

timed as (

    select
        events.record_type,
        events.record_id,
        events.customer_id,
        events.category,
        rules.rule_id,
        rules.clock_event,
        customer_states.hold_reason,
        cast(rules.period_years as integer) as period_years,
        cast(rules.period_months as integer) as period_months,
        cast(rules.period_days as integer) as period_days,
        case
            when rules.clock_event = 'relationship_ended' then events.relationship_ended_on
            else events.own_event_on
        end as clock_started_on

    from events
    inner join rules on events.category = rules.category
    left join customer_states on events.customer_id = customer_states.customer_id

),

expiring as (

    select
        timed.*,
        cast(
            timed.clock_started_on
            + to_months(12 * timed.period_years + timed.period_months)
            + to_days(timed.period_days)
            as date
        ) as expires_on

    from timed

),

keyed as (

    -- the record's pseudonymous key, once: the erasure ledger holds keys, and the retention mart shows them
    select
        expiring.*,
        pseudonymous_key(expiring.record_id) as record_key

    from expiring

),

final as (

    select
        keyed.record_type,
        keyed.record_id,
        keyed.record_key,
        keyed.customer_id,
        keyed.category,
        keyed.rule_id,
        keyed.clock_event,
        keyed.clock_started_on,
        keyed.expires_on,
        keyed.hold_reason

    from keyed

)

select * from final
