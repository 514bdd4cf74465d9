"""Plain async query functions, one module per table.

Every read of an owned object takes the owner and filters by it, and hides soft-deleted rows:
someone else's object and a missing one look the same (``None`` or `NotFound`).
Functions may ``flush()``; only the code that opened the session commits.
"""
