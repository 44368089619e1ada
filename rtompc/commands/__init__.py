"""Sub-commands of the rtompc CLI, one module each."""
