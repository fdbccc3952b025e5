"""The one base class for errors a user can fix: the CLI prints them as one line, not a traceback."""


class TfpipeError(ValueError):
    """Bad input, config or data; the message names the file, line or field and what was expected."""
