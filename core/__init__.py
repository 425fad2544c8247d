"""Shared foundation for every step: params, atomic files, errors and the CLI wrapper, seeding, environment
defaults, thread pools sized to the machine, and multi-process (torchrun) helpers."""
from core.env import load_env_defaults

load_env_defaults()
