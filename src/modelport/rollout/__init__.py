"""Gates between stages and progressive rollouts that decide by themselves."""
