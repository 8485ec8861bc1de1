"""architecture package."""
