"""What modelport writes for the systems around it (render text, write nothing): the
GitHub Actions workflow of ``modelport ci init``, and the Kubernetes and KServe
manifests of ``modelport k8s render``."""
