"""The running system: the functions and the two HTTP servers as processes, and `betting dev`."""
