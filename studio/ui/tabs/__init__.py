"""One module per tab: its layout and the handlers behind its buttons."""
