"""Shared package: settings, domain rules, models, message schemas and topic names."""
