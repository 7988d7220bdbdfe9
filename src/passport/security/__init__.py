"""Password hashing and policy, tokens, field encryption, blind indexes and rate limits."""
