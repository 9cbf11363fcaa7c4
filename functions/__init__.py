"""The three stream functions: each subpackage is one Quix Streams app whose main.py wires it."""
