"""The one exception type the command line turns into a one-line error."""


class InputError(Exception):
    """Bad input from the user: a file, folder or argument. The message names it and what is wrong."""
