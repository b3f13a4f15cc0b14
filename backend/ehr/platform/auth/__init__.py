"""Authentication and authorization: passwords, MFA, tokens, API keys, permissions."""
