"""One module per framework; each saves, detects and loads its models."""
