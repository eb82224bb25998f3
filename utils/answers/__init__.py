"""Exercise answer keys, one module per chapter; the idea modules never hold answers."""
