"""The one base class for errors a user can fix: the CLI prints them as one line, not a traceback."""


class TfpipeError(ValueError):
    """Bad input, config or data; the message names the file, line or field and what was expected."""


class ExamplesError(TfpipeError):
    """Examples or their schema do not hold what a step needs: no shards, a label with no classes, a record
    whose features disagree with the schema."""


class ConfigError(TfpipeError):
    """A config value is unknown, missing or of the wrong type."""
