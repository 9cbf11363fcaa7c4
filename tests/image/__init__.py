"""The image built and run for real (make image-test): not part of the default collection."""
