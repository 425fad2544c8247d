"""Shared foundation for every step: params, atomic files, errors, seeding."""
