"""Search spaces: NAS-Bench-101, NAS-Bench-201 and DARTS cells as padded graphs."""
