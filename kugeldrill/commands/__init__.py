"""One module per `kugeldrill` sub-command; see kugeldrill.cli."""
