-- Customer churn (MRR falling to 0) by segment, per month and dimension. Levels (see the model docs):
-- customer_type, region, tenure_band: the customer's attribute; product_category: the customer's services
-- at the start of the month; termination_reason: the services a churned customer lost; churn_type: the
-- churn event. For termination_reason and churn_type the start figures are the month's totals.
-- Contraction, for the gross MRR churn rate the report's key figure has too: a customer-level dimension takes
-- the customer's contraction; a product category the fall of its MRR in a customer who stays (contraction
-- of that category); churn events (termination_reason, churn_type) have none (null).
with

customer_months as (

    select * from {{ ref('int_customer_months') }}

),

customers as (

    select * from {{ ref('int_customers') }}

),

service_months as (

    select * from {{ ref('int_service_months') }}

),

customer_rows as (

    select
        customer_months.customer_id,
        customer_months.month,
        customer_months.previous_mrr,
        customer_months.churned_mrr,
        customer_months.contraction_mrr,
        customer_months.churn_type,
        customer_months.tenure_band,
        customer_months.movement = 'churn' as has_churned,
        coalesce(customers.customer_type, 'unknown') as customer_type,
        coalesce(customers.region, 'unknown') as region

    from customer_months
    left join customers on customer_months.customer_id = customers.customer_id
    where customer_months.previous_mrr > 0

),

-- services that counted at the start of the month (in the previous month), with the customer's outcome
start_services as (

    select
        customer_rows.month,
        customer_rows.customer_id,
        customer_rows.has_churned,
        service_months.monthly_fee,
        coalesce(service_months.product_category, 'unknown') as product_category,
        coalesce(service_months.termination_reason, 'unknown') as termination_reason

    from customer_rows
    inner join service_months
        on
            customer_rows.customer_id = service_months.customer_id
            and service_months.month = cast(customer_rows.month - interval 1 month as date)

),

month_totals as (

    select
        customer_rows.month,
        count(*) as customers_start,
        sum(customer_rows.previous_mrr) as start_mrr

    from customer_rows
    group by customer_rows.month

),

customer_level as (

    {% for dimension in ['customer_type', 'region', 'tenure_band'] %}
        select
            customer_rows.month,
            '{{ dimension }}' as dimension,
            customer_rows.{{ dimension }} as segment,
            count(*) as customers_start,
            count(*) filter (where customer_rows.has_churned) as customers_churned,
            sum(customer_rows.previous_mrr) as start_mrr,
            sum(customer_rows.churned_mrr) as churned_mrr,
            sum(customer_rows.contraction_mrr) as contraction_mrr

        from customer_rows
        group by customer_rows.month, customer_rows.{{ dimension }}
        {{ 'union all' if not loop.last }}
    {% endfor %}

),

-- services that count at the end of the month, for the contraction of each category a customer holds
end_services as (

    select
        customer_rows.month,
        customer_rows.customer_id,
        customer_rows.has_churned,
        service_months.monthly_fee,
        coalesce(service_months.product_category, 'unknown') as product_category

    from customer_rows
    inner join service_months
        on
            customer_rows.customer_id = service_months.customer_id
            and customer_rows.month = service_months.month

),

-- one row per month, customer and category held at the start: its MRR then and at the end of the month
customer_categories as (

    select
        category_services.month,
        category_services.customer_id,
        category_services.product_category,
        bool_or(category_services.has_churned) as has_churned,
        bool_or(category_services.held_at_start) as held_at_start,
        sum(category_services.start_fee) as start_mrr,
        sum(category_services.end_fee) as end_mrr

    from (
        select
            start_services.month,
            start_services.customer_id,
            start_services.product_category,
            start_services.has_churned,
            true as held_at_start,
            start_services.monthly_fee as start_fee,
            0 as end_fee
        from start_services
        union all
        select
            end_services.month,
            end_services.customer_id,
            end_services.product_category,
            end_services.has_churned,
            false as held_at_start,
            0 as start_fee,
            end_services.monthly_fee as end_fee
        from end_services
    ) as category_services
    group by category_services.month, category_services.customer_id, category_services.product_category

),

category_level as (

    select
        customer_categories.month,
        'product_category' as dimension,
        customer_categories.product_category as segment,
        count(*) as customers_start,
        count(*) filter (where customer_categories.has_churned) as customers_churned,
        sum(customer_categories.start_mrr) as start_mrr,
        coalesce(sum(customer_categories.start_mrr) filter (where customer_categories.has_churned), 0)
            as churned_mrr,
        coalesce(sum(greatest(customer_categories.start_mrr - customer_categories.end_mrr, 0)) filter (
            where not customer_categories.has_churned
        ), 0) as contraction_mrr

    from customer_categories
    where customer_categories.held_at_start
    group by customer_categories.month, customer_categories.product_category

),

reason_level as (

    select
        start_services.month,
        'termination_reason' as dimension,
        start_services.termination_reason as segment,
        any_value(month_totals.customers_start) as customers_start,
        count(distinct start_services.customer_id) as customers_churned,
        any_value(month_totals.start_mrr) as start_mrr,
        sum(start_services.monthly_fee) as churned_mrr,
        cast(null as decimal(18, 2)) as contraction_mrr

    from start_services
    inner join month_totals on start_services.month = month_totals.month
    where start_services.has_churned
    group by start_services.month, start_services.termination_reason

),

churn_type_level as (

    select
        customer_rows.month,
        'churn_type' as dimension,
        customer_rows.churn_type as segment,
        any_value(month_totals.customers_start) as customers_start,
        count(*) as customers_churned,
        any_value(month_totals.start_mrr) as start_mrr,
        sum(customer_rows.churned_mrr) as churned_mrr,
        cast(null as decimal(18, 2)) as contraction_mrr

    from customer_rows
    inner join month_totals on customer_rows.month = month_totals.month
    where customer_rows.has_churned
    group by customer_rows.month, customer_rows.churn_type

),

segments as (

    select * from customer_level
    union all
    select * from category_level
    union all
    select * from reason_level
    union all
    select * from churn_type_level

),

final as (

    select
        segments.month,
        segments.dimension,
        segments.segment,
        cast(segments.customers_start as integer) as customers_start,
        cast(segments.customers_churned as integer) as customers_churned,
        cast(segments.start_mrr as decimal(18, 2)) as start_mrr,
        cast(segments.churned_mrr as decimal(18, 2)) as churned_mrr,
        cast(segments.contraction_mrr as decimal(18, 2)) as contraction_mrr,
        cast(segments.customers_churned as double) / nullif(segments.customers_start, 0) as logo_churn_rate,
        cast(segments.churned_mrr as double) / nullif(segments.start_mrr, 0) as mrr_churn_rate,
        cast(segments.churned_mrr + segments.contraction_mrr as double)
        / nullif(segments.start_mrr, 0) as gross_mrr_churn_rate

    from segments

)

select * from final
