"""The one error of the face's own making: a setting it cannot run with."""


class ConfigError(ValueError):
    """A setting has a value we cannot run with; the message says which and what is allowed."""
