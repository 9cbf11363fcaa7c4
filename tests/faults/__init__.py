"""Fault injection: the system's own processes killed, paused and cut off while it works."""
