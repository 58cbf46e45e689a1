"""The one exception type for mistakes a user can make (bad file, bad argument).

The command line turns it into a one-line message and a non-zero exit; everything
else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input; the message names the input and what is wrong."""
