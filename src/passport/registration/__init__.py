"""Registration of person accounts: the number proved by a code, the agreements accepted (A1), a first session."""
