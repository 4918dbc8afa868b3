"""casesync: case-as-code for Radiopaedia.org."""

__version__ = "0.1.0"
