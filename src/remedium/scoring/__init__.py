"""Exposure score and Secure Score for devices."""
