"""The ``modelport NOUN VERB`` command line."""
