"""Data files bundled with tinygrad_lite (see ``tinygrad_lite.data``)."""
