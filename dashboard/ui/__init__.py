"""HTML pages for operators."""
