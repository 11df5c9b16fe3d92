"""Rollouts: promotion gates, A/B statistics and the progressive delivery controller."""
