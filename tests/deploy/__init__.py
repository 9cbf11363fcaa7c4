"""Static checks of the Dockerfile, the Compose file, k8s/ and the Helm chart: no cluster needed."""
