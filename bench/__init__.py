"""lanchat's load bench: many clients in one process against the server in the built pyz.

Run it with `make bench` (the sweep) or `make bench-quick` (the CI smoke run); see
docs/benchmark.md for what each figure means. Linux only (it reads /proc).
"""
