"""Errors a user can act on: the CLI prints them as one line and exits non-zero."""


class GenoshareError(Exception):
    """A problem with the user's request or inputs (not a bug)."""


class InputError(GenoshareError):
    """A problem in one input file; the message names the file."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
