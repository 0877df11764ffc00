"""Identity: projects, users, role assignments and tokens (a Keystone v3 subset)."""
