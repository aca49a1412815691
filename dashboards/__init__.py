"""Dashboards: the Dash app served at / on the main port (filled in by a later issue)."""

__all__: list[str] = []
