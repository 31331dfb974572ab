"""Errors a user can cause. The CLI prints their message on one line and exits 2."""


class GraderError(Exception):
    """The grader itself could not run: bad arguments, missing data, broken configuration."""

    exit_code = 2


class UnknownWeek(GraderError):
    pass


class SpecError(GraderError):
    pass


class DataError(GraderError):
    pass


class PostError(GraderError):
    pass


class ReleaseError(GraderError):
    pass


class GradersBroken(SpecError):
    """A week's graders cannot run as written (an import, a fixture, a marker): the course's
    fault. The student's report says so in one sentence; the detail is the instructor's."""
