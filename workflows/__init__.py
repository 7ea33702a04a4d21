"""Workflows: one function per product, from items and settings to published layers."""
