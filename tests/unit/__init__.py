"""The rules, the schemas and the docs, with no servers."""
