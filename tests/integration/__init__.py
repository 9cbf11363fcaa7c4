"""The running system: the functions and the gateway as processes, and `betting dev`."""
