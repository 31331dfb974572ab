"""Every state the grader records, as an enum: how a grading ended, how the notebook's run
ended, what became of each model and of each submission. Their values are what results.json,
ci.json and the templates hold ("passed", not Outcome.PASSED); a string status is never
compared or rewritten anywhere else. Stdlib only."""

from __future__ import annotations

import enum


class Named(str, enum.Enum):
    """A state written to JSON and templates as its plain value ("passed", not Outcome.PASSED)."""

    def __str__(self) -> str:
        return self.value


class Outcome(Named):
    """How a grading run ended. The exit code is 0 for PASSED, 1 for the others but GRADER_ERROR."""

    PASSED = "passed"
    BELOW_THRESHOLD = "below_threshold"
    CELL_ERROR = "cell_error"
    CELL_TIMEOUT = "cell_timeout"
    TOTAL_TIMEOUT = "total_timeout"
    OUT_OF_MEMORY = "out_of_memory"
    OUT_OF_DISK = "out_of_disk"
    KERNEL_DIED = "kernel_died"
    MODEL_MISSING = "model_missing"
    MODEL_UNUSABLE = "model_unusable"
    NEEDS_REVIEW = "needs_review"
    TAMPERED = "tampered"
    SUBMISSION_INVALID = "submission_invalid"
    GRADER_ERROR = "grader_error"

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]

    @property
    def exit_code(self) -> int:
        return {Outcome.PASSED: 0, Outcome.GRADER_ERROR: 2}.get(self, 1)

    @classmethod
    def read(cls, value: object) -> Outcome:
        """An outcome read back from a results.json (another process's, or an older grader's):
        anything unknown is the grader's own failure, never a student outcome."""
        try:
            return cls(value)
        except ValueError:
            return cls.GRADER_ERROR


_SENTENCES = {
    Outcome.PASSED: "All checks passed.",
    Outcome.BELOW_THRESHOLD: "The notebook ran, but some checks did not reach what is required.",
    Outcome.CELL_ERROR: "A cell raised an error, so the notebook stopped there.",
    Outcome.CELL_TIMEOUT: "A cell ran longer than the per-cell time limit and was stopped.",
    Outcome.TOTAL_TIMEOUT: "The notebook ran longer than the total time limit and was stopped.",
    Outcome.OUT_OF_MEMORY: "The notebook ran out of memory and was stopped.",
    Outcome.OUT_OF_DISK: "The notebook wrote more files than its folder may hold and stopped.",
    Outcome.KERNEL_DIED: "The Python kernel running the notebook died.",
    Outcome.MODEL_MISSING: "The notebook ran, but the model to grade was not there at the end.",
    Outcome.MODEL_UNUSABLE: "The notebook ran, but the grader could not use the model it left.",
    Outcome.NEEDS_REVIEW: (
        "The notebook ran, but its model must be looked at by an instructor before its "
        "accuracy counts."
    ),
    Outcome.TAMPERED: (
        "The notebook tampered with the grader's own files or messages, so it was not graded."
    ),
    Outcome.SUBMISSION_INVALID: "The file submitted is not a notebook the grader can run.",
    Outcome.GRADER_ERROR: (
        "The grader itself failed, so your notebook was not graded; this is not your fault."
    ),
}


class ExecutionStatus(Named):
    """How the notebook's run ended, as the runner saw it. Every status but COMPLETED and
    RUNNER_ERROR (the runner's own failure: a grader error) is the outcome of the same name."""

    COMPLETED = "completed"
    CELL_ERROR = "cell_error"
    CELL_TIMEOUT = "cell_timeout"
    TOTAL_TIMEOUT = "total_timeout"
    OUT_OF_MEMORY = "out_of_memory"
    OUT_OF_DISK = "out_of_disk"
    KERNEL_DIED = "kernel_died"
    TAMPERED = "tampered"  # the run's own messages or files were not what the grader writes
    RUNNER_ERROR = "runner_error"

    @property
    def outcome(self) -> Outcome:
        if self in (ExecutionStatus.COMPLETED, ExecutionStatus.RUNNER_ERROR):
            raise ValueError(f"{self.value} is no student outcome")
        return Outcome(self.value)


class ModelStatus(Named):
    """What became of a model the week's spec asks for."""

    EVALUATED = "evaluated"  # the grader ran it on its own data
    MISSING = "missing"  # no such variable, or nothing was captured
    UNUSABLE = "unusable"  # there, but the grader could not export or run it
    SKIPPED = "skipped"  # not graded here (e.g. no pretrained weights on the runner)


class CaptureStatus(Named):
    """What the in-kernel capture (`grader.child.inkernel`) wrote for a model in capture.json."""

    EXPORTED = "exported"
    MISSING = "missing"
    UNUSABLE = "unusable"


class SubmissionState(Named):
    """What the grader does with a student's submission it found for a week."""

    GRADE = "grade"  # one notebook file: graded
    WITHDRAWN = "withdrawn"  # none left (deleted or renamed away): a notice
    AMBIGUOUS = "ambiguous"  # several match the week's pattern: a notice
    SYMLINK = "symlink"  # a link, not a file: a notice
    OVER_BUDGET = "over_budget"  # past the course's GPU budget: a notice, the nightly regrade


class Clock(Named):
    """Which clock dated a submission, for its lateness (grader.github.pushes)."""

    PUSH = "push"  # when GitHub received the push that brought it: GitHub's clock
    COMMIT = "commit"  # the commit's own date, which its author can set: only when asked for
    LMS = "lms"  # the instructor's column of submission times (an LMS export)
    NONE = "none"  # no clock to trust (a copied folder's file times are none): lateness left out


# --- messages between processes: declared here, used by both ends ----------------------------


class RunnerEvent(Named):
    """What the notebook runner (`grader.child.runner`) reports on its events pipe, one JSON line
    each: `{"event": ...}`; a done event's `status` is an ExecutionStatus."""

    READY = "ready"  # the kernel is up and the grader's first cell ran: waiting at the gate
    CELL = "cell"  # a cell starts: index, total, student
    DONE = "done"  # how the run ended


class JobKind(Named):
    """What the evaluation worker (`grader.child.evaluator`) does with a job's inputs."""

    RUN = "run"  # run the program on them: its outputs
    STORED = "stored"  # look for them among the program's tensors: a best correlation each


class CellRole(Named):
    """The grader's own cells in a staged notebook (`metadata.grader.injected`), which the
    runner bounds by their own limits and the grader leaves out of the student's numbering."""

    PROLOGUE = "prologue"  # before the student's cells: seeds, the data's roots, pip answered
    CAPTURE = "capture"  # after them: hands the models over
