"""rto layer of rtompc (see ../shared/DESIGN.md)."""
