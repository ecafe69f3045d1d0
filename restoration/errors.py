"""The one exception type for mistakes a user can make and fix.

Raised where the mistake is found (a damaged checkpoint, weights of another task, a
device that is not there, a model argument that does not exist, an output file that
already exists). The command-line tools print its message as one line, without a
traceback; any other exception is a bug and keeps its traceback.
"""


class UserError(RuntimeError):
    """A problem with what the user asked for; the message names the thing and the fix."""
