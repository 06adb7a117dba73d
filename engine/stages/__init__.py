"""The stages of a compression run, each a function of (context, data) returning its result."""
