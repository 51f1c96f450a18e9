"""Accounts (the seed's User Service): register, log in, refresh, log out, profiles; tokens and keys."""
