"""Account cancellation: cooling-off, finalisation (delete/anonymise), personal-data export."""
