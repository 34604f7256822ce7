"""S3-compatible front end: the same objects through S3's API."""
