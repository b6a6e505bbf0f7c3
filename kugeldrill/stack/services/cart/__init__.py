"""cart stand-in: the cart state machine, tranlogs and their publication."""
