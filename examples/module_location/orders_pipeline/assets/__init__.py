"""Assets of the orders pipeline, one module per stage."""
