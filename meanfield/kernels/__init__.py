"""Compiled building blocks of the velocity fields."""
