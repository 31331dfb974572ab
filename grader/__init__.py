"""Grading toolkit for the deep-learning course's weekly notebooks."""

import sys

__version__ = "0.1.0"


def skip_slow_optional_imports() -> None:
    """Call first thing in a `grader` process that will read notebooks.

    nbformat validates with jsonschema, which imports `rfc3987_syntax` whenever it is installed
    (Jupyter's server packages pull it in) and spends about 3 s building a parser for IRI
    formats that no notebook schema uses. Marking it absent makes jsonschema skip that checker.
    """
    sys.modules.setdefault("rfc3987_syntax", None)
