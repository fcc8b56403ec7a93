"""Small shared helpers: seeding, devices, atomic files, environment capture."""
