"""The ``lcq`` command line: parse, validate, call lcworker, print."""
