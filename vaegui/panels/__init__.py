"""The window's panels."""
