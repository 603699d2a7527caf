"""lanchat: a chat for the people on one local network."""

__version__ = "4.4.0"
