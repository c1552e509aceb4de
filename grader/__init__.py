"""The grading package."""
