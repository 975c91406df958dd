"""The semantic layer: the marts' metrics, defined once in dbt, queried with MetricFlow (metrics/semantic.py)."""
