"""Shared foundation for every step: params, atomic files, errors, seeding, environment defaults."""
from core.env import load_env_defaults

load_env_defaults()
