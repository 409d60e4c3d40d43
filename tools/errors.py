"""The converter's one error type: a one-line message that names the fix (exit code 2)."""


class ConvertError(Exception):
    """The input, its images or its options cannot make a bundle; the message says why."""

    exit_code = 2
