"""The one error type users see.

Every problem caused by input (files, flags, checkpoints) raises :class:`HarvitError` with a
message that names the file or flag, what was found and what was expected. The CLI prints it
on one line and exits with code 2.
"""


class HarvitError(Exception):
    """Bad input or an unusable environment, explained in one line."""
