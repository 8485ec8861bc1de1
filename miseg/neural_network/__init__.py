"""neural_network package."""
