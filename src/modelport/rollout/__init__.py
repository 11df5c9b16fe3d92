"""Getting a version to users safely: promotion gates, A/B statistics and results,
deployments' progressive rollouts."""
