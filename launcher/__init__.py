"""The launcher: the `betting` command (launcher.cli) and the local stack of `make run` and the
tests (launcher.local, not in the image). The top layer: it starts the two servers and the
functions, which stand on the shared package `betting`; nothing below imports it."""
