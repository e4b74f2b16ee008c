"""Helpers for the programs that run the portal's processes from outside: the test suite
(tests/) and the benchmarks (benchmarks/) both import this; neither imports the other.
Not part of the portal: not installed, imported by no app."""
