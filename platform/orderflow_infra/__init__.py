"""orderflow's AWS infrastructure as Pulumi components (imported by platform/__main__.py)."""
