"""Metadata stores: the MetadataStore protocol, in memory and on SQL databases."""
