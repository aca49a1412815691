"""tinct's exceptions, one tree.

    TinctError
    ├── ConfigError          bad flag, environment variable or config file value
    ├── StorageError         the store failed (backend exceptions re-raised from)
    │   └── SchemaError      the schema can't be created or migrated on this server
    ├── CollectError         a collector could not measure (target down, timeout)
    └── DecodeError          a request body can't be decoded at all (HTTP 400)
        ├── TooLargeError    body over the limit, compressed or not (HTTP 413)
        └── UnsupportedMediaError  content type not accepted (HTTP 415)

Third-party exceptions are translated at the boundary and re-raised ``from``
the original, so callers only catch these.
"""

from __future__ import annotations

__all__ = [
    "TinctError",
    "ConfigError",
    "StorageError",
    "SchemaError",
    "CollectError",
    "DecodeError",
    "TooLargeError",
    "UnsupportedMediaError",
]


class TinctError(Exception):
    """Base of every error tinct raises on purpose."""


class ConfigError(TinctError):
    """A setting is invalid; the message names the setting and the limit."""


class StorageError(TinctError):
    """The store could not do what was asked."""


class SchemaError(StorageError):
    """Schema creation or migration failed."""


class DecodeError(TinctError):
    """A request body could not be decoded."""


class TooLargeError(DecodeError):
    """A request body exceeds a size limit."""


class UnsupportedMediaError(DecodeError):
    """A request's content type is not one the endpoint accepts."""


class CollectError(TinctError):
    """A collector could not measure: server down, timeout, bad response.

    The scheduler turns it into ``up`` 0 for that target; it never crashes
    anything else.
    """
