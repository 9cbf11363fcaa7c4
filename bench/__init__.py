"""`make bench`: the performance suite, run against the project's own local stack."""
