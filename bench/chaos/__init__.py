"""``make chaos``: processors under processor kills, broker kills and broker pauses, with every
order accounted for (docs/reliability.md)."""
