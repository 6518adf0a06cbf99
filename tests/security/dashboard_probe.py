"""Run the dashboard's AppTest in a process of its own and print what it rendered as JSON.

Used by test_dashboard: in the pytest process, after other SASL_SSL clients ran there, the
AppTest script thread's first TLS connection crashed the interpreter (SIGSEGV, seen with
confluent-kafka 2.12 / librdkafka 2.12.1). A fresh process, like a real dashboard, does not.
Usage: python -m tests.security.dashboard_probe SECRETS_JSON (ORDERFLOW_* from the environment).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from streamlit import config
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).parents[2] / "dashboard" / "app.py")


def texts(at: AppTest) -> list[str]:
    parts = []
    for kind in ("markdown", "caption", "metric", "error", "warning", "info", "success", "text"):
        for element in at.get(kind):
            parts += [str(getattr(element, a, "")) for a in ("value", "label", "body")]
    return parts


def main() -> None:
    config.set_option("server.address", "127.0.0.1")
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets.update(json.loads(sys.argv[1]))
    pages = {}
    at.run()
    pages["overview"] = {"errors": [e.value for e in at.error], "texts": texts(at)}
    at.switch_page("views/dlq.py").run()
    pages["dlq"] = {"errors": [e.value for e in at.error], "texts": texts(at)}
    at.switch_page("views/produce.py").run()
    at.text_input(key="pf_order_id").input("ord-dash-1")
    at.button[0].click().run()
    pages["produce"] = {
        "errors": [e.value for e in at.error],
        "texts": texts(at),
        "success": [s.value for s in at.success],
    }
    print(json.dumps({"exception": [str(e.value) for e in at.exception], "pages": pages}))


if __name__ == "__main__":
    main()
