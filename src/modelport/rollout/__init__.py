"""Getting a version to users safely: promotion gates, deployments' progressive rollouts."""
