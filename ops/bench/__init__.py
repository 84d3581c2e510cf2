"""Benchmarks: each module here defines NAME, HELP, add_arguments(parser) and run(args) -> int.

`ringloop bench <NAME>` discovers them; they print ratios against a baseline measured in the
same run and, with --json, end with one JSON object on the last line.
"""
