"""PromQL over tinct's metric store, with Prometheus 3.x semantics.

``values`` (what expressions evaluate to), ``engine`` (parsing with
promql-parser and evaluation), ``functions`` (the function table), ``api``
(the Prometheus HTTP API on the main port).
"""
