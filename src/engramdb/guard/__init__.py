"""Defences on the write path: the memory poisoning guard and optional PII redaction."""

from engramdb.guard.poison import THRESHOLDS, TRUST_LEVELS, Verdict, screen

__all__ = ["THRESHOLDS", "TRUST_LEVELS", "Verdict", "screen"]
