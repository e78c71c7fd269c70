"""The product's rules as plain Python: standard library only, no I/O."""
