"""clm: embeddable certificate lifecycle management.

    import clm

    with clm.Clm.open(sqlite_dir="./clm-data", master_key_file="./master.key",
                      create_master_key=True) as c:
        system = c.system_actor()
        root = c.create_root_ca(system, {"common_name": "Example Root CA"})

Calls are synchronous and release the GIL while they wait. Records are dicts
(the core's field names). Every failure raises a subclass of ``ClmError``
named after its error code (``clm.NotFound``, ``clm.InvalidInput``, ...) with
the stable code string as ``code``; wrong argument types raise ``TypeError``.
"""

from ._native import (
    Actor,
    AlreadyExists,
    Authentication,
    Clm,
    ClmError,
    Closed,
    Configuration,
    Conflict,
    Crypto,
    Database,
    Internal,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    __version__,
    error_codes,
    operations,
)

__all__ = [
    "Actor",
    "AlreadyExists",
    "Authentication",
    "Clm",
    "ClmError",
    "Closed",
    "Configuration",
    "Conflict",
    "Crypto",
    "Database",
    "Internal",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PolicyViolation",
    "__version__",
    "error_codes",
    "operations",
]
