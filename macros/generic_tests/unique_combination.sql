{#-
    Generic test: the combination of `combination_of_columns` is unique in the model (a composite key).
    Fails with one row per duplicated combination. Pair it with not_null tests on each key column.

        data_tests:
          - unique_combination:
              arguments:
                combination_of_columns: [invoice_id, line_no]
-#}
{% test unique_combination(model, combination_of_columns) %}
    {%- set columns_csv = combination_of_columns | join(', ') %}
    select
        {{ columns_csv }},
        count(*) as n_records
    from {{ model }}
    group by {{ columns_csv }}
    having count(*) > 1
{% endtest %}
