"""What the tests run against: the fake PyPI, real servers, and helpers to drive and check a mirror."""
