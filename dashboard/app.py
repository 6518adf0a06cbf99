"""orderflow dashboard entry point: ``orderflow dashboard`` or ``streamlit run dashboard/app.py``.

Loads the settings once per process, gates every page behind the configured auth, then hands
over to the selected page. Pages only render; they collect through ``dashboard.data``.

The pages live in ``views/``, not ``pages/``: Streamlit runs an app with a ``pages/`` folder
in its legacy multipage mode until the first ``st.navigation`` call of the process, and in that
mode a URL such as ``/dlq`` executes the page file directly, skipping this gate.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui

# An emoji icon becomes an inline SVG; a :material/…: one is fetched from fonts.gstatic.com on
# every page load, a request leaving the operator's page.
st.set_page_config(page_title="orderflow", page_icon="🔁", layout="wide")

settings = ui.settings()
ui.metrics_endpoint(settings.metrics_port, settings.metrics_host)
if not ui.gate():
    st.stop()

page = st.navigation(
    [
        st.Page("views/overview.py", title="Overview", icon=":material/monitoring:", default=True),
        st.Page("views/produce.py", title="Produce", icon=":material/add_shopping_cart:"),
        st.Page("views/topics.py", title="Topics", icon=":material/table_rows:"),
        st.Page("views/dlq.py", title="DLQ", icon=":material/report:"),
        st.Page("views/trace.py", title="Trace", icon=":material/route:"),
    ]
)
with st.sidebar:
    ui.refresh_controls()
    st.caption(f"Kafka `{settings.bootstrap_servers}`")
    ui.auth_badge()
page.run()
