"""The `grader` command's subcommands beyond one grading: GitHub's side and the end-of-term
tools. grader.cli registers them on its group."""
