"""Errors a user can act on. The CLI prints their message without a traceback."""


class InstructptError(Exception):
    """Base of errors that carry a message meant for the user."""


class ConfigError(InstructptError):
    """A config file or flag is invalid; the message names the key and the file."""


class InputError(InstructptError):
    """Input data is bad; the message names the file and line and what to do."""


class ResumeError(InstructptError):
    """A stage directory holds work from a different config or input."""
