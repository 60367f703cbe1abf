"""User-facing errors: one clear line, a non-zero exit, no traceback."""


class BenchError(Exception):
    """An error caused by the user's input (a file, key or value), reported as one line.

    The message must name the file, key or value and say what was expected.
    """

    exit_code = 2
