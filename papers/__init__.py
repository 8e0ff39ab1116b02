"""Paper reproductions: one subpackage per source document, each the same shape (see ARCHITECTURE.md)."""
