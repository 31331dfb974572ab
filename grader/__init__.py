"""Grading toolkit for the deep-learning course's weekly notebooks."""

import sys

__version__ = "0.1.0"

# nbformat validates with jsonschema, which imports `rfc3987_syntax` whenever it is installed
# (Jupyter's server packages pull it in) and spends about 3 s building a parser for IRI formats
# that no notebook schema uses. Marked absent when the package is imported, so every process
# that imports the grader (the command, the sandbox's runner and evaluator, a test) skips it
# without a call to remember; jsonschema then skips that one format checker.
sys.modules.setdefault("rfc3987_syntax", None)
