"""master-data stand-in: staff, items, payments, tax codes."""
