"""Pure data and rules, no I/O: references, names, entities, signatures, search filters."""
