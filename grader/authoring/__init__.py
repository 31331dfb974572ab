"""Authoring a week: `grader release` (nbgrader's student version, the public spec and graders,
and the release checks: graders that collect and run, markers nbgrader would misread) and the
contract cell it writes into the released notebook. Above the pipeline, whose checks it runs."""
