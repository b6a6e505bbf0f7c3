"""terminal stand-in: tenants, stores, terminals and their lifecycle, cash and open/close logs."""
