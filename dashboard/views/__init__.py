"""The dashboard's pages; each renders only (collection lives in ``dashboard.data``)."""
