"""Devices, device groups, installed software, and the weaknesses found on devices."""
