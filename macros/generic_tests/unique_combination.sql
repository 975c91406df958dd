{#-
    Generic test: the combination of `combination_of_columns` is unique in the model (a composite key).
    Fails with one row per duplicated combination. Pair it with not_null tests on each key column.

        data_tests:
          - unique_combination:
              arguments:
                combination_of_columns: [invoice_id, line_no]

    Grouped by a 64-bit hash of the combination first, and only the rows whose hash repeats by the columns
    themselves: an 8-byte group key instead of the columns (grouping 96M retention records by their 32-digit
    keys ran out of memory beside another model at a million customers). A hash collision costs a second
    look, never a false failure.
-#}
{% test unique_combination(model, combination_of_columns) %}
    {%- set columns_csv = combination_of_columns | join(', ') %}
    with

    repeated_hashes as (
        select hash({{ columns_csv }}) as row_hash
        from {{ model }}
        group by row_hash
        having count(*) > 1
    )

    select
        {{ columns_csv }},
        count(*) as n_records
    from {{ model }}
    where hash({{ columns_csv }}) in (select repeated_hashes.row_hash from repeated_hashes)
    group by {{ columns_csv }}
    having count(*) > 1
{% endtest %}
