"""Test doubles that speak the real protocols (see botapi.py)."""
