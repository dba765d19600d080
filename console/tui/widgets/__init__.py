"""Widgets shared by the panes and screens."""
