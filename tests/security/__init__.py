"""Attacks on the host's front door, each against a real ``deepaas-host run``."""
