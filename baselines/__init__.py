"""Reference strategies that the methods under study are compared against."""
