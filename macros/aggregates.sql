{#-
    sorted_distinct_list(expression, condition=none): aggregate; the distinct non-null values of `expression`
    (over the rows where `condition` holds), sorted, comma-separated; null if there are none. What
    `string_agg(distinct x, ', ' order by x)` gives, in a form whose state stays inside DuckDB's memory limit.
-#}
{% macro sorted_distinct_list(expression, condition=none) -%}
    nullif(array_to_string(list_sort(list_distinct(
        list({{ expression }}){% if condition %} filter (where {{ condition }}){% endif %}
    )), ', '), '')
{%- endmacro %}
