"""tinct: ops observability and tracing on one data standard, with dyed requests."""

__version__ = "0.1.0"

__all__ = ["__version__"]
