"""Collectors: layered metric collectors (filled in by later issues)."""

__all__: list[str] = []
