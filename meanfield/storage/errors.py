"""The errors of reading and writing run files."""


class OutputExistsError(FileExistsError):
    """A new run file would overwrite an existing file."""


class RunFileError(ValueError):
    """A file that is not a readable meanfield run file (or cannot be resumed)."""
