"""What a grading records, below every package that makes or shows one: the result of one
grading (`results.py`), a gradebook's row of it (`gradebook.py`), and the escaping filters any
record passes text from a submission through (`escape.py`, standard library only)."""
