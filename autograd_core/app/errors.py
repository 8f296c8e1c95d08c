"""The one error type the app shows to its user without a traceback."""


class AppError(Exception):
    """A problem with the user's input (a file, an option, an expression).

    The command line prints its message as ``autograd-core: error: ...`` and
    exits with status 2; anything else is a bug and keeps its traceback.
    """
