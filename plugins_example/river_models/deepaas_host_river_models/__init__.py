"""Online-learning example plugins for deepaas-host (river)."""

__version__ = "0.1.0"
