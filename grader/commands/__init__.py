"""The `grader` command's subcommands: one notebook's grading, the batch, the course's own
commands, GitHub's side and the end-of-term tools. grader.cli registers them on its group."""
