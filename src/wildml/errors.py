"""Errors a user can cause, each turned into a clear message and an exit code by the CLI."""

from __future__ import annotations


class WildmlError(Exception):
    """A problem with the user's input or configuration, not a bug.

    The CLI prints the message without a traceback and exits with ``exit_code``.
    """

    exit_code = 2


class ConfigError(WildmlError):
    """A missing or invalid setting in ``params.yaml`` or on the command line."""


class DataError(WildmlError):
    """Input data that cannot be read or breaks the listing data contract."""


class RejectThresholdError(DataError):
    """Too large a share of input rows was rejected for the run to be trusted."""

    exit_code = 3


class PackageIntegrityError(WildmlError):
    """A scoring package whose files do not match its manifest."""

    exit_code = 4
