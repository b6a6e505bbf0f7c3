"""account stand-in: register and token."""
