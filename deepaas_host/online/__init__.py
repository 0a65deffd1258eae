"""Online learning: models that learn one event at a time, durably.

``service`` runs in the host process; ``actor`` (with ``instance``, ``flavors``
and ``eventlog``) runs in the online worker processes and is the only code that
imports river.
"""
