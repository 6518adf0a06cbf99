"""orderflow dashboard: the Streamlit app (entry point ``dashboard/app.py``)."""
