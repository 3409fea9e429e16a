"""The two ways an engine cannot be had: a program is not installed, or starting it failed.

They are told apart because the answer differs: the first is fixed by installing a package
(``redu-mcp`` checks at start-up and names it), the second is reported on the instance.
"""


class EngineUnavailable(Exception):
    """A program an engine needs is not installed; the message names it and the apt package."""


class EngineStartError(Exception):
    """An engine failed to start; the message is the reason (never containing a password)."""
