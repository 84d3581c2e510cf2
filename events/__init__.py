"""ringloop package."""
