"""Errors the user can act on, each with the exit code the command line gives it."""

from __future__ import annotations


class TiercodeError(Exception):
    """An error shown to the user as one line; `exit_code` follows design.md."""

    exit_code = 2


class UsageError(TiercodeError):
    """Bad input: a path, an option, a repository Tiercode cannot use."""


class ConfigError(TiercodeError):
    """A config file or setting is invalid."""


class ModelMissing(TiercodeError):
    """A model file is missing or corrupt."""


class NoTierAnswered(TiercodeError):
    """Every tier in the cascade failed or was skipped."""

    exit_code = 1


class BudgetStop(TiercodeError):
    """A budget stopped a call before it was made."""

    exit_code = 3
