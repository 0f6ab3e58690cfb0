"""The toolkit's exception types: bad user input, and a failed hub operation."""

from __future__ import annotations


class ToolkitInputError(ValueError):
    """Bad user input (a path, a file's contents, a flag), reported before any long run starts.

    The message names the file, line or flag at fault and says what was expected.
    """


class HubError(RuntimeError):
    """A hub operation failed (network, permissions). The message says how to retry."""
