"""Real-name verification of persons (GB 11643 ID numbers) and organisation accounts (GB 32100 USCC)."""
