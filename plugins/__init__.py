"""Built-in plugins: algorithms, reward models and evaluators, registered through the same entry-point group third parties use."""
