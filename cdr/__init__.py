"""Shared domain package of the CDR platform.

The data contract (record types and fields), identifier rules, validation rules,
pseudonymisation and typed configuration live here once; the generator, the batch
layer, the speed layer and the local stack import them instead of redefining them.
"""

__version__ = "0.1.0"
