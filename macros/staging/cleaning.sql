{#- Column-cleaning expressions shared by the staging models. Each returns a SQL expression. -#}

{#-
    clean_string(column): trim leading/trailing whitespace (space, tab, CR, LF, no-break space);
    empty after trimming -> null. Exports say leading/trailing spaces are not meaningful.
-#}
{% macro clean_string(column) -%}
    nullif(trim({{ column }}, ' ' || chr(9) || chr(10) || chr(13) || chr(160)), '')
{%- endmacro %}

{#-
    clean_code(column, strip_spaces=false): an identifier or code written in capitals (HETU, Y-tunnus,
    ISO country and currency codes, site codes): cleaned as clean_string and upper-cased; with
    strip_spaces=true also inner whitespace is removed (reference numbers are printed in groups of five).
-#}
{% macro clean_code(column, strip_spaces=false) -%}
    {%- if strip_spaces -%}
        nullif(upper(regexp_replace({{ column }}, '[\s\x{00A0}]+', '', 'g')), '')
    {%- else -%}
        upper({{ clean_string(column) }})
    {%- endif -%}
{%- endmacro %}

{#- clean_email(column): trimmed and lower-cased; empty -> null. No further validation here. -#}
{% macro clean_email(column) -%}
    lower({{ clean_string(column) }})
{%- endmacro %}

{#-
    normalise_phone_fi(column): a phone number as typed by staff -> E.164 (`+358401234567`), or null.
      1. strip whitespace (incl. no-break space), dashes, dots and parentheses;
      2. `00…` (international call prefix) -> `+…` (`00358…` -> `+358…`, `0046…` -> `+46…`);
      3. a remaining leading `0` is the Finnish national trunk prefix -> `+358` + the rest;
      4. `+3580…` (`+358 (0)40 …`, the trunk 0 written after the country code) -> `+358…`;
      5. the result must match ^\+[1-9][0-9]{6,14}$, else null (letters, too short/long, no prefix: `12`).
    `+…` input is kept as is (after steps 1 and 4). Keep the raw value in a separate column so that the
    quality checks can report what could not be normalised.
-#}
{% macro normalise_phone_fi(column) -%}
    nullif(
        regexp_extract(
            regexp_replace(
                regexp_replace(
                    regexp_replace(
                        regexp_replace({{ column }}, '[\s\x{00A0}.()\-]+', '', 'g'),
                        '^00', '+'
                    ),
                    '^0', '+358'
                ),
                '^\+3580', '+358'
            ),
            '^\+[1-9][0-9]{6,14}$'
        ),
        ''
    )
{%- endmacro %}
