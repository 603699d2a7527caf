"""The IRC gateway: IRC clients as members of lanchat's rooms (docs/irc.md)."""
